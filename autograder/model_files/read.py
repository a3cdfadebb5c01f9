"""What a student's model file is, read without loading it: Keras files (``.keras``, ``.h5``) by the
reader shipped with the NumPy engine (:mod:`autograder.keras_numpy.architecture`, which students' own
check uses too), scikit-learn files (``.skops``) by :mod:`autograder.model_files.skops`."""

from __future__ import annotations

from pathlib import Path

import course_config
from autograder.keras_numpy.architecture import ModelFileError, inspect_model
from autograder.model_files.skops import inspect_skops


def inspect(spec: course_config.ModelSpec, path: Path, max_mb: int):
    """Architecture of one model file, read without loading it (ModelFileError if unusable)."""
    if spec.kind == "skops":
        info = inspect_skops(path, max_mb=max_mb)
        if info.foreign:
            raise ModelFileError(
                f"{path.name} contains objects from outside scikit-learn ({', '.join(info.foreign[:3])}); "
                "the grader only loads scikit-learn models"
            )
        return info
    return inspect_model(path, max_mb=max_mb)
