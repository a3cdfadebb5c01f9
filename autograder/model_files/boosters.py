"""Read what a saved XGBoost or LightGBM model is from its file, without loading it with the library.

XGBoost saves a model (``XGBClassifier.save_model`` or ``Booster.save_model``) as JSON (``.json``) or as
Universal Binary JSON (``.ubj``), the same document in two encodings; LightGBM saves a text model
(``booster_.save_model``, ``.txt``) whose header lines (``key=value``, up to the first ``Tree=``) say what
it is, and whose ``parameters:`` section at the end says how it was boosted. Neither format carries code:
the grader reads them here with the standard library only (a small, bounded UBJSON decoder included), and
the libraries' own loaders read them in the sandbox. What kind of file it is comes from its first bytes,
never from its name.

Like the rest of this package, this file travels in every notebook's helper cell (the student's check
before hand-in reads the files as the grader does): standard library only.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

try:  # in the grader
    from autograder.keras_numpy.architecture import ModelFileError, check_file
    from autograder.model_files.skops import is_pickle
except ImportError:  # in a notebook, unpacked by its helper cell
    from keras_numpy.architecture import ModelFileError, check_file
    from model_files.skops import is_pickle

FORMATS = ("xgboost-json", "xgboost-ubj", "lightgbm")
# XGBoost's boosters that are tree ensembles; LightGBM's boosting types (all of them are trees: "goss" is
# the name LightGBM < 4 gave gradient-based one-side sampling, and linear trees are trees with linear leaves).
XGBOOST_TREES = ("gbtree", "dart")
LIGHTGBM_TREES = ("gbdt", "dart", "rf", "goss")
# The scikit-learn wrapper XGBoost records as the estimator type (learner attribute "scikit_learn").
XGBOOST_CLASSES = {"classifier": "XGBClassifier", "regressor": "XGBRegressor", "ranker": "XGBRanker"}
# Bounds of what is read: containers nested deeper than XGBoost ever writes, and values in all. The trees'
# numbers are not read (XGBoost keeps them in numeric arrays; the UBJSON decoder skips typed ones, the JSON
# reader drops those of more than NUMBERS_KEPT characters), so a model of thousands of trees is far below.
MAX_DEPTH = 64
MAX_VALUES = 5_000_000
NUMBERS_KEPT = 64
# A numeric JSON array of more than NUMBERS_KEPT characters, with no string, array or object in it.
_LONG_NUMERIC_ARRAY = re.compile(r'\[[^\[\]{}"]{%d,}\]' % NUMBERS_KEPT)


@dataclass(frozen=True)
class BoosterInfo:
    """What the grader knows about an XGBoost or LightGBM model from its file (shaped like skops' EstimatorInfo)."""

    path: Path
    class_name: str  # "XGBClassifier" (the scikit-learn wrapper, when the file says so), "XGBoost Booster", ...
    module: str  # "xgboost" or "lightgbm"
    steps: tuple[str, ...]  # (class_name,)
    foreign: tuple[str, ...]  # always (): nothing in the file is an object of another library
    library: str  # "xgboost" or "lightgbm": the sandbox job that loads it
    booster: str  # XGBoost: "gbtree", "dart", "gblinear"; LightGBM: "gbdt", "dart", "rf", ...
    objective: str  # as the file says: "binary:logistic", "binary sigmoid:1", "multiclass num_class:3", ...
    n_trees: int
    n_features: int
    n_classes: int = 1  # output columns: 1 for a binary or a regression model, else the number of classes
    version: str = ""  # of the library that saved it, where the file says: "3.2.0", LightGBM's model "v4"
    linear_leaves: bool = False  # LightGBM's linear trees (linear_tree=True)

    @property
    def final_estimator(self) -> str:
        return self.steps[-1]

    @property
    def is_tree_ensemble(self) -> bool:
        """The model is an ensemble of trees: XGBoost's gbtree or dart booster, any LightGBM boosting."""
        return self.booster in (XGBOOST_TREES if self.library == "xgboost" else LIGHTGBM_TREES)

    @property
    def is_binary_probability(self) -> bool:
        """The model's output is the probability of class 1 (per event, or as the second of two columns)."""
        objective = self.objective.split()[0] if self.objective.split() else ""
        if self.library == "xgboost":
            return (objective in ("binary:logistic", "reg:logistic") and self.n_classes == 1
                    or objective == "multi:softprob" and self.n_classes == 2)
        return (objective in ("binary", "cross_entropy", "xentropy") and self.n_classes == 1
                or objective in ("multiclass", "softmax") and self.n_classes == 2)

    def summary(self) -> str:
        booster = self.booster + (" with linear leaves" if self.linear_leaves else "")
        return (f"{self.class_name} ({booster}, {self.objective}, {self.n_trees} tree{'s' * (self.n_trees != 1)}, "
                f"{self.n_features} features)")


def booster_format(path: str | Path) -> str | None:
    """What a file is by its first bytes: "xgboost-json", "xgboost-ubj", "lightgbm", or None (also when unreadable)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    return _format(head)


def _format(head: bytes) -> str | None:
    if head[:1] == b"{" and head[1:2] in (b"i", b"U", b"I", b"l", b"L", b"$", b"#", b"N") and b"learner" in head[:64]:
        return "xgboost-ubj"  # an object whose first key has a binary length: UBJSON, as XGBoost writes it
    text = head.lstrip(b" \t\r\n")
    if text[:1] == b"{" and text[1:].lstrip(b" \t\r\n")[:1] == b'"' and b'"learner"' in head:
        return "xgboost-json"
    if re.match(rb"tree\r?\nversion=v\d", head):
        return "lightgbm"
    return None


def inspect_booster(path: str | Path, *, max_mb: float = 100, binary_trees: bool = True) -> BoosterInfo:
    """Read an XGBoost (.json, .ubj) or LightGBM (.txt) model file; raise ModelFileError with a student-facing reason.

    With ``binary_trees`` (the default), a file that is not a tree ensemble giving the probability of class 1
    (a linear booster, a multi-class, regression or ranking model, one without trees) is refused too, with a
    message saying what it is and what to train instead.
    """
    path = check_file(path, max_mb)
    data = path.read_bytes()
    kind = _format(data[:4096])
    if kind is None:
        raise ModelFileError(f"{path.name} {_what_it_is(data)}; {_how_to_save(path)}")
    if kind == "lightgbm":
        info = _lightgbm(path, data)
    else:
        try:
            doc = _json_skeleton(data) if kind == "xgboost-json" else decode_ubjson(data, skip_over=0)
        except UBJSONError as exc:
            raise ModelFileError(f"{path.name} is a damaged XGBoost UBJSON file ({exc}); save it again with "
                                 f"model.save_model('{path.stem}.ubj')") from None
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ModelFileError(f"{path.name} is a damaged XGBoost JSON file ({type(exc).__name__}: {str(exc)[:160]}); "
                                 f"save it again with model.save_model('{path.stem}.json')") from None
        info = _xgboost(path, doc, kind)
    if binary_trees:
        problem = binary_trees_problem(info)
        if problem:
            raise ModelFileError(problem)
    return info


def job_kind(info: BoosterInfo) -> str:
    """The sandbox prediction job that loads the model: "xgboost" or "lightgbm"."""
    return info.library


def binary_trees_problem(info: BoosterInfo) -> str | None:
    """Why the model is not a tree ensemble giving the probability of class 1 (student-facing), or None."""
    name, xgb = info.path.name, info.library == "xgboost"
    train = ("train an XGBClassifier on the 0/1 labels (objective 'binary:logistic', the default) with booster "
             "'gbtree' (the default)" if xgb else
             "train an LGBMClassifier on the 0/1 labels (objective 'binary', the default)")
    save = (f"model.save_model('{info.path.stem}.json')" if xgb
            else f"model.booster_.save_model('{info.path.stem}.txt')")
    objective = info.objective.split()[0] if info.objective.split() else ""
    if not info.is_tree_ensemble:
        what = ("a linear model (booster 'gblinear'), not trees" if info.booster == "gblinear"
                else f"not a tree ensemble (booster '{info.booster}')")
        return f"{name} is {what}; {train}, and save it with {save}"
    if info.n_trees == 0:
        return f"{name} has no trees: was it saved before training? Save the trained model with {save}"
    if info.is_binary_probability:
        return None
    if info.n_classes > 2:
        return (f"{name} is a {info.n_classes}-class model (objective '{info.objective}'); SUSY separates signal "
                f"from background, two classes: {train}")
    if objective.startswith(("reg:", "count:", "survival:", "regression", "huber", "fair", "poisson", "quantile",
                             "mape", "gamma", "tweedie")):
        return (f"{name} is a regression model (objective '{info.objective}'), not a classifier giving the "
                f"probability of signal: {train}")
    if objective.startswith(("rank:", "lambdarank", "rank_xendcg")):
        return f"{name} is a ranking model (objective '{info.objective}'), not a classifier: {train}"
    if objective in ("binary:logitraw", "binary:hinge", "multi:softmax"):
        gives = "raw scores (log-odds)" if objective == "binary:logitraw" else "class labels"
        return (f"{name} gives {gives}, not probabilities (objective '{info.objective}'); train with objective "
                "'binary:logistic' (XGBClassifier's default)")
    return (f"{name}'s objective '{info.objective}' does not give the probability of signal; {train}")


# ------------------------------------------------------------------------------------------------
# XGBoost
def _json_skeleton(data: bytes):
    """An XGBoost JSON document with its long numeric arrays (the trees' numbers) left out, as empty lists.

    What the grader reads is in the document's objects and strings; leaving the numbers out first keeps
    reading a 100 MB model to a fraction of a second and a few MB.
    """
    text = _LONG_NUMERIC_ARRAY.sub("[]", data.decode("utf-8"))
    if text.count(",") + text.count("[") + text.count("{") > MAX_VALUES:
        raise ValueError(f"more than {MAX_VALUES:,} values besides the trees' numbers")
    return json.loads(text)


def _xgboost(path: Path, doc, kind: str) -> BoosterInfo:
    encoding = "JSON" if kind == "xgboost-json" else "UBJSON"
    learner = doc.get("learner") if isinstance(doc, dict) else None
    if not isinstance(learner, dict):
        raise ModelFileError(f"{path.name} is {encoding} but not a model saved by XGBoost (no 'learner' object in "
                             f"it); save XGBoost models with model.save_model('{path.stem}.json')")
    if "learner_train_param" in learner and "model" not in learner.get("gradient_booster", {}):
        raise ModelFileError(f"{path.name} is XGBoost's configuration (save_config()), which holds no trees; save the "
                             f"model with model.save_model('{path.stem}.json')")
    try:
        gb = learner["gradient_booster"]
        booster = str(gb["name"])
        objective = str(learner["objective"]["name"])
        params = learner.get("learner_model_param", {})
        n_features = int(params.get("num_feature", 0))
        n_classes = max(1, int(params.get("num_class", 0)))
        n_targets = max(1, int(params.get("num_target", 1)))
        if booster in XGBOOST_TREES:
            model = gb["gbtree"]["model"] if booster == "dart" else gb["model"]
            trees = model.get("trees")
            n_trees = len(trees) if isinstance(trees, list) else int(model["gbtree_model_param"]["num_trees"])
        else:
            n_trees = 0
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFileError(f"{path.name} is {encoding} from XGBoost but incomplete ({type(exc).__name__}: "
                             f"{str(exc)[:80]}); save it again with model.save_model('{path.stem}.json')") from None
    class_name = _xgboost_class(learner.get("attributes"))
    version = doc.get("version")
    version = ".".join(str(v) for v in version) if isinstance(version, list) and all(
        isinstance(v, int) for v in version) else ""
    return BoosterInfo(path=path, class_name=class_name, module="xgboost", steps=(class_name,), foreign=(),
                       library="xgboost", booster=booster, objective=objective, n_trees=n_trees,
                       n_features=n_features, n_classes=max(n_classes, n_targets), version=version)


def _xgboost_class(attributes) -> str:
    """The scikit-learn wrapper that saved the model, from the learner's "scikit_learn" attribute (a JSON string:
    ``{"_estimator_type": "classifier"}``, and the class's name as "type" from XGBoost 1.x), else the Booster."""
    meta = attributes.get("scikit_learn") if isinstance(attributes, dict) else None
    if isinstance(meta, str) and len(meta) < 65536:
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = None
        if isinstance(meta, dict):
            named = meta.get("type")
            if isinstance(named, str) and re.fullmatch(r"XGB[A-Za-z]{1,40}", named):
                return named
            if meta.get("_estimator_type") in XGBOOST_CLASSES:
                return XGBOOST_CLASSES[meta["_estimator_type"]]
    return "XGBoost Booster"


# ------------------------------------------------------------------------------------------------
# LightGBM
def _lightgbm(path: Path, data: bytes) -> BoosterInfo:
    end = data.find(b"\nTree=")
    header = data[: end if end >= 0 else len(data)].decode("utf-8", errors="replace")
    fields: dict[str, str] = {}
    for line in header.splitlines()[1:]:
        key, sep, value = line.strip().partition("=")
        if key:
            fields[key] = value if sep else "1"  # a flag alone on its line: "average_output"
    start = data.rfind(b"\nparameters:\n")
    stop = data.find(b"\nend of parameters", start) if start >= 0 else -1
    parameters = dict(re.findall(r"^\[([A-Za-z_]+): ([^\]\n]*)\]", data[start:stop].decode("utf-8", errors="replace"),
                                 re.MULTILINE)) if 0 <= start < stop else {}
    try:
        n_features = int(fields["max_feature_idx"]) + 1
        n_classes = int(fields.get("num_class", "1"))
    except (KeyError, ValueError):
        raise ModelFileError(f"{path.name} starts like a LightGBM model but its header is incomplete (no "
                             f"max_feature_idx); save it again with model.booster_.save_model('{path.stem}.txt')") from None
    if b"\nend of trees" not in data:
        raise ModelFileError(f"{path.name} is a LightGBM model cut short (it has no 'end of trees' line); save it again "
                             f"with model.booster_.save_model('{path.stem}.txt')")
    booster = parameters.get("boosting") or ("rf" if "average_output" in fields else "gbdt")
    return BoosterInfo(
        path=path, class_name="LightGBM Booster", module="lightgbm", steps=("LightGBM Booster",), foreign=(),
        library="lightgbm", booster=booster, objective=fields.get("objective", "") or "(none)",
        n_trees=data.count(b"\nTree="), n_features=n_features, n_classes=max(1, n_classes),
        version=fields.get("version", ""),
        linear_leaves=parameters.get("linear_tree") == "1" or b"\nis_linear=1" in data,
    )


# ------------------------------------------------------------------------------------------------
# Shared
def _what_it_is(data: bytes) -> str:
    if not data:
        return "is empty"
    if is_pickle(data):
        return "is a Python pickle (pickle.dump or joblib.dump), which the grader never loads: loading one runs code"
    if data[:4] == b"PK\x03\x04":
        return "is a zip archive (a .skops or .keras file?), not an XGBoost or LightGBM model"
    if data.lstrip()[:1] in (b"{", b"["):
        if b'"tree_info"' in data and re.match(rb'\s*\{\s*"name"\s*:\s*"tree"', data):
            return "is LightGBM's dump_model() JSON, which LightGBM cannot load back"
        return "is JSON but not a model saved by XGBoost"
    return "is not an XGBoost or LightGBM model file"


def _how_to_save(path: Path) -> str:
    return (f"save XGBoost models with model.save_model('{path.stem}.json') (or '.ubj') and LightGBM models with "
            f"model.booster_.save_model('{path.stem}.txt')")


class UBJSONError(ValueError):
    """The bytes are not well-formed Universal Binary JSON (or exceed the decoder's bounds); says where."""


class Skipped:
    """A typed numeric array left undecoded (see :func:`decode_ubjson`'s ``skip_over``): its element type and count."""

    __slots__ = ("marker", "count")

    def __init__(self, marker: str, count: int):
        self.marker, self.count = marker, count

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"Skipped({self.marker!r}, {self.count})"


# Fixed-size values: their struct format (big-endian, as UBJSON is); markers with no payload.
_FIXED = {"i": ">b", "U": ">B", "I": ">h", "l": ">i", "L": ">q", "d": ">f", "D": ">d", "C": ">c"}
_INTEGERS = ("i", "U", "I", "l", "L")
_CONSTANTS = {"Z": None, "T": True, "F": False}


class _Decoder:
    def __init__(self, data: bytes, max_depth: int, max_values: int, skip_over: int | None):
        self.data, self.pos, self.max_depth, self.values_left = data, 0, max_depth, max_values
        self.max_values, self.skip_over = max_values, skip_over

    def fail(self, what: str, at: int | None = None):
        raise UBJSONError(f"at byte {self.pos if at is None else at:,}: {what}")

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            self.fail(f"ends early: {n:,} more bytes expected, {len(self.data) - self.pos:,} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def marker(self) -> str:
        while True:
            m = chr(self.take(1)[0])
            if m != "N":  # no-op
                return m

    def fixed(self, m: str):
        fmt = _FIXED[m]
        value = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value.decode("latin-1") if m == "C" else value

    def length(self, what: str) -> int:
        at = self.pos
        m = self.marker()
        if m not in _INTEGERS:
            self.fail(f"a {what} must be an integer, found marker {m!r}", at)
        n = self.fixed(m)
        if n < 0:
            self.fail(f"negative {what} {n}", at)
        return n

    def string(self) -> str:
        n = self.length("string length")
        at = self.pos
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError:
            self.fail("a string that is not UTF-8", at)

    def count_value(self):
        self.values_left -= 1
        if self.values_left < 0:
            self.fail(f"more than {self.max_values:,} values")

    def value(self, m: str, depth: int):
        self.count_value()
        if m in _CONSTANTS:
            return _CONSTANTS[m]
        if m in _FIXED:
            return self.fixed(m)
        if m in ("S", "H"):  # a string; a high-precision number, kept as its decimal string
            return self.string()
        if m in ("[", "{"):
            if depth >= self.max_depth:
                self.fail(f"containers nested more than {self.max_depth} deep")
            return self.container(m, depth + 1)
        self.fail(f"unknown marker {m!r}", self.pos - 1)

    def container(self, opener: str, depth: int):
        at = self.pos
        typ, count = None, None
        if self.data[self.pos:self.pos + 1] == b"$":
            self.pos += 1
            typ = chr(self.take(1)[0])
            if typ not in _FIXED and typ not in _CONSTANTS and typ not in ("S", "H", "[", "{"):
                self.fail(f"unknown element type {typ!r}", self.pos - 1)
            if self.data[self.pos:self.pos + 1] != b"#":
                self.fail("a typed container without a count")
        if self.data[self.pos:self.pos + 1] == b"#":
            self.pos += 1
            count = self.length("count")
            # Every element takes at least a byte, but for constants in a typed container, which take none.
            size = struct.calcsize(_FIXED[typ]) if typ in _FIXED else (0 if typ in _CONSTANTS else 1)
            least = count * (size + (2 if opener == "{" else 0))  # an object's key: a length marker and a length
            if least > len(self.data) - self.pos or (size == 0 and count > self.values_left):
                self.fail(f"a container claims {count:,} elements, more than the {len(self.data) - self.pos:,} "
                          "bytes left can hold", at)
        if opener == "[":
            if typ in _FIXED and typ != "C":
                return self.numbers(typ, count)
            if count is None:
                items = []
                while (m := self.marker()) != "]":
                    items.append(self.value(m, depth))
                return items
            return [self.value(typ or self.marker(), depth) for _ in range(count)]
        obj = {}
        if count is None:
            while True:
                if self.data[self.pos:self.pos + 1] == b"}":
                    self.pos += 1
                    return obj
                while self.data[self.pos:self.pos + 1] == b"N":
                    self.pos += 1
                key = self.string()
                obj[key] = self.value(self.marker(), depth)
        for _ in range(count):
            key = self.string()
            obj[key] = self.value(typ or self.marker(), depth)
        return obj

    def numbers(self, typ: str, count: int):
        """A typed numeric array: decoded, or skipped when longer than ``skip_over`` (its bytes must be there)."""
        fmt = _FIXED[typ]
        at = self.pos
        chunk = self.take(struct.calcsize(fmt) * count)
        if self.skip_over is not None and count > self.skip_over:
            return Skipped(typ, count)
        self.values_left -= count
        if self.values_left < 0:
            self.fail(f"more than {self.max_values:,} values", at)
        return list(struct.unpack(f">{count}{fmt[1]}", chunk))


def decode_ubjson(data: bytes, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES,
                  skip_over: int | None = None):
    """Decode one Universal Binary JSON document (UBJSON draft 12, as XGBoost writes it); UBJSONError if malformed.

    Objects, arrays (counted, typed ``[$T#n`` and ``]``-terminated), strings, integers of every width,
    float32/64, true, false and null, no-ops between values. Bounded: containers at most ``max_depth`` deep,
    at most ``max_values`` values, no count larger than the bytes left can hold, nothing after the document.
    Typed numeric arrays of more than ``skip_over`` elements are returned as :class:`Skipped` (type and count,
    one value), not decoded.
    """
    decoder = _Decoder(bytes(data), max_depth, max_values, skip_over)
    value = decoder.value(decoder.marker(), 0)
    if decoder.pos != len(decoder.data):
        decoder.fail(f"{len(decoder.data) - decoder.pos:,} bytes after the end of the document")
    return value
