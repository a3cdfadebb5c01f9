"""Reading a student's model files without loading them (architecture, weight shapes, what saved them)."""

from autograder.keras_numpy.architecture import ModelFileError, ModelInfo, locate
from autograder.model_files.read import inspect

__all__ = ["ModelFileError", "ModelInfo", "inspect", "locate"]
