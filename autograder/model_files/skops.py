"""Read what a saved scikit-learn model is from its skops file, without loading it.

A ``.skops`` file is a zip archive whose ``schema.json`` describes every object in it by class and
module. The grader reads that JSON only: which estimator it is (the last step of a Pipeline) and
whether anything in it comes from outside scikit-learn, NumPy, SciPy or Python's builtins, which
the sandbox would refuse to load.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

try:  # in the grader
    from autograder.keras_numpy.architecture import ModelFileError, check_file
except ImportError:  # in a notebook, unpacked by its helper cell
    from keras_numpy.architecture import ModelFileError, check_file

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "builtins", "collections")


@dataclass(frozen=True)
class EstimatorInfo:
    """What the grader knows about a scikit-learn model from its skops schema."""

    path: Path
    class_name: str  # the top-level object, e.g. "Pipeline"
    module: str
    # Pipeline step classes in order (a search's best estimator; an SGDClassifier as "SGDClassifier(loss='log_loss')");
    # (class_name,) otherwise
    steps: tuple[str, ...]
    foreign: tuple[str, ...]  # module.class of objects outside TRUSTED_MODULES

    @property
    def final_estimator(self) -> str:
        return self.steps[-1]

    def summary(self) -> str:
        return " -> ".join(self.steps)


def _objects(node, found: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        if "__class__" in node and "__module__" in node:
            found.append((str(node["__module__"]), str(node["__class__"])))
        for value in node.values():
            _objects(value, found)
    elif isinstance(node, list):
        for value in node:
            _objects(value, found)


# Wrappers whose fitted model is the estimator they found best (its class is what they are).
SEARCH_WRAPPERS = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")
# Estimators whose kind depends on a parameter (the loss): the name the checks see spells it out.
LOSS_NAMED = ("SGDClassifier",)


def _attribute(node, name: str):
    """An object node's attribute node (``None`` if it has none by that name)."""
    try:
        content = node["content"]["content"]
        return content.get(name) if isinstance(content, dict) else None
    except (KeyError, TypeError):
        return None


def _json_value(node):
    """The value of a JSON-stored attribute node (a string, number, bool), or None."""
    if isinstance(node, dict) and node.get("is_json") and isinstance(node.get("content"), str):
        try:
            return json.loads(node["content"])
        except ValueError:
            return None
    return None


def _name(node, depth: int = 0) -> tuple[str, ...]:
    """The classes a fitted object node stands for: a Pipeline's steps in order, the best estimator of a
    search (with the search's name), an SGDClassifier with its loss."""
    if not isinstance(node, dict) or depth > 8:
        return ()
    cls = str(node.get("__class__", "?"))
    if cls == "Pipeline":
        steps = _attribute(node, "steps")
        try:
            return tuple(name for step in steps["content"] for name in _name(step["content"][1], depth + 1))
        except (KeyError, IndexError, TypeError):
            return (cls,)
    if cls in SEARCH_WRAPPERS:
        best = _name(_attribute(node, "best_estimator_"), depth + 1)
        return best if best else (cls,)
    if cls in LOSS_NAMED:
        loss = _json_value(_attribute(node, "loss"))
        return (f"{cls}(loss={loss!r})" if isinstance(loss, str) else cls,)
    return (cls,)


def is_pickle(head: bytes) -> bool:
    """Whether a file's first bytes are a Python pickle's (protocol 2 to 5: pickle.dump, joblib.dump, torch.save's
    legacy format), which the grader never loads."""
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def inspect_skops(path: str | Path, *, max_mb: float = 100) -> EstimatorInfo:
    """Read ``path``'s skops schema; raise ModelFileError with a student-facing reason."""
    path = check_file(path, max_mb)
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        what = "a Python pickle (joblib.dump or pickle.dump) under a .skops name" if is_pickle(head) else "not a skops file"
        raise ModelFileError(
            f"{path.name} is {what}; save scikit-learn models with skops.io.dump(model, '{path.name}') "
            "(pickle and joblib files are not accepted: loading them runs arbitrary code)"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            if "schema.json" not in zf.namelist():
                raise ModelFileError(f"{path.name} has no schema.json; save it with skops.io.dump")
            unpacked = sum(i.file_size for i in zf.infolist())
            if unpacked > 4 * max_mb * 2**20:
                raise ModelFileError(f"{path.name} unpacks to {unpacked / 2**20:.0f} MB, too large")
            schema = json.loads(zf.read("schema.json"))
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ModelFileError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from None
    if not isinstance(schema, dict) or "__class__" not in schema:
        raise ModelFileError(f"{path.name}: its schema describes no object")
    found: list[tuple[str, str]] = []
    _objects(schema, found)
    foreign = tuple(sorted({f"{m}.{c}" for m, c in found if m.split(".")[0] not in TRUSTED_MODULES}))
    cls, module = str(schema["__class__"]), str(schema.get("__module__", ""))
    return EstimatorInfo(path=path, class_name=cls, module=module, steps=_name(schema) or (cls,), foreign=foreign)
