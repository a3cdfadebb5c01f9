"""Which file of a student's folder is the model the grader grades, and what a file is, told by its bytes.

Students hand in what their tools wrote: Colab names a second download ``mnist_dense (1).keras``, a
tutorial's checkpoint is ``convnet_from_scratch.keras``, a legacy ``.h5`` sits beside a ``.keras``, a
``model.export(...)`` folder or a joblib pickle carries the expected name. The rule, the same for the
grader and the student's check before hand-in (this file travels in every notebook's helper cell):

1. Files named as the assignment says (``susy_trees.skops``, or a name of another accepted format:
   ``mnist_dense.h5``, ``susy_trees.json``): the one there is graded; with several (a ``.keras`` and its
   ``.h5`` twin), the newest, or the one the assignment names when their times are equal, with a note.
2. Else, model files of an accepted format in the folder (not in sub-folders) that another of the
   assignment's models does not claim by name: the only one is graded, with a note saying which; a
   name that differs only by case or a download suffix (`` (1)``) wins over other names; with several
   left, nothing is graded and the message lists them and says what to rename.
3. Else, what is there instead (a SavedModel folder, weights only, a PyTorch file, a pickle) is named,
   once each, with what to save.
"""

from __future__ import annotations

import re
from pathlib import Path

try:  # in the grader
    from autograder.keras_numpy.architecture import SAVED_MODEL_FOLDER, ModelFileError
    from autograder.keras_numpy.config import HDF5_MAGIC
    from autograder.model_files.boosters import booster_format
    from autograder.model_files.skops import is_pickle
except ImportError:  # in a notebook: unpacked by its helper cell, beside keras_numpy/
    from keras_numpy.architecture import SAVED_MODEL_FOLDER, ModelFileError
    from keras_numpy.config import HDF5_MAGIC
    from model_files.boosters import booster_format
    from model_files.skops import is_pickle

# The file suffixes of each format a model may be handed in as.
SUFFIXES = {"keras": (".keras", ".h5"), "skops": (".skops",), "xgboost": (".json", ".ubj"), "lightgbm": (".txt",)}
# What each format is, for messages.
FORMAT_NAMES = {"keras": "Keras model", "skops": "scikit-learn (skops) model", "xgboost": "XGBoost model",
                "lightgbm": "LightGBM model"}  # "a Keras model", "an XGBoost model": each reads after "a"/"an" as written
# How to save each format (messages).
HOW_TO_SAVE = {
    "keras": 'model.save("{file}")',
    "skops": 'skops.io.dump(model, "{file}")',
    "xgboost": 'model.save_model("{stem}.json")',
    "lightgbm": 'model.booster_.save_model("{stem}.txt")',
}
# Seconds two saves must be apart for one of them to be "the newer".
SAME_TIME_S = 2.0
DOWNLOAD_SUFFIX = re.compile(r"\s*(\(\d+\)|-\d+|_\d+|copy|- copy)$", re.IGNORECASE)


def file_format(path) -> str | None:
    """What a file is by its first bytes and contents: "keras" (a .keras archive or a legacy .h5 model),
    "skops", "xgboost", "lightgbm", "pickle", "weights" (weights without a model), or None."""
    import zipfile

    path = Path(path)
    try:
        if path.is_symlink() or not path.is_file():
            return None
        with open(path, "rb") as f:
            head = f.read(16)
        if head.startswith(HDF5_MAGIC):
            import h5py

            with h5py.File(path, "r") as f:
                if "model_config" in f.attrs:
                    return "keras"
                return "weights" if ("layers" in f or "model_weights" in f or f.attrs.get("layer_names") is not None) else None
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
            if "config.json" in names:
                return "keras"
            if "schema.json" in names:
                return "skops"
            if any(name.endswith("data.pkl") for name in names):
                return "pytorch"  # torch.save writes a zip with <name>/data.pkl
            return None
        if is_pickle(head):
            return "pickle"
    except (OSError, ValueError, RuntimeError):  # unreadable, damaged: the reader of its format says why
        return None
    kind = booster_format(path)  # "xgboost-json", "xgboost-ubj", "lightgbm" or None (also when unreadable)
    return None if kind is None else kind.split("-")[0]


def _newest(paths: list[Path]) -> tuple[Path, str | None]:
    """The newest of files named as the assignment says, with a note when there is a choice."""
    if len(paths) == 1:
        return paths[0], None
    times = {p: p.stat().st_mtime for p in paths}
    ranked = sorted(paths, key=lambda p: -times[p])
    others = ", ".join(p.name for p in ranked[1:])
    if times[ranked[0]] - times[ranked[1]] >= SAME_TIME_S:
        return ranked[0], f"graded {ranked[0].name}, saved after {others} (hand in one model file)"
    return paths[0], (f"graded {paths[0].name}: {', '.join(p.name for p in paths[1:])} was handed in as well, with "
                      "the same time, so the grader cannot tell which is newer (hand in one model file)")


def _base(name: str) -> str:
    """A file's name without its suffix, case or a download suffix such as " (1)"."""
    stem = name.rsplit(".", 1)[0]
    while True:
        shorter = DOWNLOAD_SUFFIX.sub("", stem)
        if shorter == stem:
            return stem.strip().lower()
        stem = shorter


def expected_names(file: str, formats: tuple[str, ...]) -> list[str]:
    """The names a model may have: ``file`` first, then the same stem with each accepted format's suffixes."""
    stem = Path(file).stem
    names = [file]
    for fmt in formats:
        names += [stem + suffix for suffix in SUFFIXES[fmt] if stem + suffix != file]
    return names


def _what_else(path: Path, kind: str | None) -> str | None:
    """A sentence on a file that is not a model of an accepted format, if it looks like a try at one."""
    name = path.name
    if path.is_dir():
        return f"{name}/ {SAVED_MODEL_FOLDER}" if (path / "saved_model.pb").exists() else None
    if kind == "weights" or name.endswith((".weights.h5", ".ckpt.index")) or path.suffix == ".ckpt":
        return f"{name} holds weights only (model.save_weights), not the model"
    if kind == "pytorch" or path.suffix in (".pt", ".pth"):
        return f"{name} is a PyTorch file"
    if kind == "pickle" or path.suffix in (".pkl", ".pickle", ".joblib"):
        return f"{name} is a Python pickle (pickle.dump or joblib.dump), which the grader never loads: loading one runs code"
    return None


def locate(folder, file: str, formats: tuple[str, ...] = ("keras",), claimed: tuple[str, ...] = (),
           newer_than: float | None = None) -> tuple[Path, str | None]:
    """The model file the grader reads for ``file`` in ``folder`` and a note when it is not ``file`` itself
    (see the module's rule); ModelFileError naming what was found instead when there is none to grade.

    ``formats``: the formats the model may be handed in as ("keras", "skops", "xgboost", "lightgbm");
    ``claimed``: the files the assignment's other models are named (never taken for this one);
    ``newer_than``: a time (seconds since the epoch) before which a file under another name was not written by
    what is graded (a re-executed notebook's run), so it is not taken.
    """
    folder = Path(folder)
    stem = Path(file).stem
    named = [folder / n for n in expected_names(file, formats)]
    kinds = {p: file_format(p) for p in named if p.exists() or p.is_symlink()}  # what is there under those names
    models = [p for p, kind in kinds.items() if kind in formats]
    if models:
        path, note = _newest(models)
        if note is None and path.name != file:
            note = (f"graded {path.name}, the legacy HDF5 (.h5) twin of {file}" if path.suffix == ".h5"
                    else f"graded {path.name} (an {FORMAT_NAMES[kinds[path]]}) in place of {file}")
        return path, note
    if folder / file in kinds:
        return folder / file, None  # the reader of its format says what is wrong with it
    instead = [said for p, kind in kinds.items() if (said := _what_else(p, kind))]
    # 2. model files of an accepted format under other names
    claimed_names = {c.lower() for c in claimed}
    suffixes = {s for f in formats for s in SUFFIXES[f]}
    candidates, others = [], []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.lower() in claimed_names or path.name.startswith("."):
            continue
        if newer_than is not None and path.lstat().st_mtime < newer_than:
            continue
        kind = file_format(path)
        if kind in formats and path.suffix.lower() in suffixes:
            candidates.append(path)
            continue
        said = _what_else(path, kind)  # a try at a model in a format the grader does not read
        if said and path not in kinds:
            others.append(said)
    close = [p for p in candidates if _base(p.name) == stem.lower()]
    if len(candidates) == 1 or len(close) == 1:
        path = candidates[0] if len(candidates) == 1 else close[0]
        why = ("its name differs from it only by case or a copy number" if _base(path.name) == stem.lower()
               else f"it is the only {' or '.join(FORMAT_NAMES[f] for f in formats)} file handed in")
        return path, f"graded {path.name} for {file}: no file of that name was handed in, and {why} (rename it to {file} to be sure)"
    if candidates:
        listed = ", ".join(p.name for p in candidates[:6]) + (" and more" if len(candidates) > 6 else "")
        raise ModelFileError(f"model file {file} not found, and {len(candidates)} other model files were handed in "
                             f"({listed}): rename the one to grade to {file}")
    found = list(dict.fromkeys(instead + others))
    if found:
        how = " or ".join(HOW_TO_SAVE[f].format(file=file, stem=stem) for f in formats)
        if formats == ("keras",) and any("PyTorch" in f for f in found):
            fix = f"Rebuild the network in Keras (the notebook's cells), save it with {how}"
        else:
            fix = f"Save {'the whole model' if formats == ('keras',) else 'it'} with {how}"
        raise ModelFileError(f"model file {file} not found: {'; '.join(found[:3])}. {fix} and submit that file")
    raise ModelFileError(f"model file {file} not found")
