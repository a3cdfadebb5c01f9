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

from autograder.keras_numpy.architecture import ModelFileError, check_file

TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "builtins", "collections")


@dataclass(frozen=True)
class EstimatorInfo:
    """What the grader knows about a scikit-learn model from its skops schema."""

    path: Path
    class_name: str  # the top-level object, e.g. "Pipeline"
    module: str
    steps: tuple[str, ...]  # Pipeline step classes in order; (class_name,) otherwise
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


def _pipeline_steps(schema: dict) -> tuple[str, ...]:
    """Classes of a Pipeline's steps, read from its ``steps`` list of (name, estimator) tuples."""
    try:
        steps = schema["content"]["content"]["steps"]["content"]
        return tuple(step["content"][1]["__class__"] for step in steps)
    except (KeyError, IndexError, TypeError):
        return ()


def inspect_skops(path: str | Path, *, max_mb: float = 100) -> EstimatorInfo:
    """Read ``path``'s skops schema; raise ModelFileError with a student-facing reason."""
    path = check_file(path, max_mb)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path.name} is not a skops file; save scikit-learn models with skops.io.dump(model, '{path.name}') "
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
    steps = _pipeline_steps(schema) if cls == "Pipeline" else ()
    return EstimatorInfo(path=path, class_name=cls, module=module, steps=steps or (cls,), foreign=foreign)
