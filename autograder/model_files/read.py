"""What a student's model file is, read without loading it: Keras files (``.keras``, ``.h5``) by the
reader shipped with the NumPy engine (:mod:`autograder.keras_numpy.architecture`), scikit-learn files
(``.skops``) by :mod:`.skops`, XGBoost and LightGBM files by :mod:`.boosters`."""

from __future__ import annotations

from pathlib import Path

try:  # in the grader
    from autograder.keras_numpy.architecture import ModelFileError, ModelInfo, inspect_model
    from autograder.model_files.boosters import BoosterInfo, inspect_booster
    from autograder.model_files.locate import file_format
    from autograder.model_files.skops import inspect_skops
except ImportError:  # in a notebook, unpacked by its helper cell
    from keras_numpy.architecture import ModelFileError, ModelInfo, inspect_model
    from model_files.boosters import BoosterInfo, inspect_booster
    from model_files.locate import file_format
    from model_files.skops import inspect_skops


def inspect(kind: str, path: Path, max_mb: float, formats: tuple[str, ...] | None = None):
    """Architecture of one model file, read without loading it (ModelFileError if unusable).

    ``kind``: the format the assignment names the file in ("keras" or "skops"); ``formats``: every format
    it accepts for that model (default: ``kind`` only). An XGBoost or LightGBM file is read as such where
    the assignment accepts it; anything else as ``kind``, whose reader says what is wrong.
    """
    formats = formats or (kind,)
    found = file_format(path)
    if found in ("xgboost", "lightgbm") and found in formats:
        return inspect_booster(path, max_mb=max_mb)
    if kind == "skops":
        info = inspect_skops(path, max_mb=max_mb)
        if info.foreign:
            raise ModelFileError(
                f"{path.name} contains objects from outside scikit-learn ({', '.join(info.foreign[:3])}); "
                "the grader only loads scikit-learn models"
                + (" (an XGBoost or LightGBM model is graded from its own file: see the notebook's save cell)"
                   if any(f.split(".")[0] in ("xgboost", "lightgbm") for f in info.foreign) else "")
            )
        return info
    return inspect_model(path, max_mb=max_mb)


def job_kind(info) -> str:
    """The prediction job that loads a model read by :func:`inspect`: "keras", "skops", "xgboost" or "lightgbm"."""
    if isinstance(info, ModelInfo):
        return "keras"
    if isinstance(info, BoosterInfo):
        return info.library
    return "skops"
