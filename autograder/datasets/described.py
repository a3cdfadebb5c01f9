"""A dataset described as data (``autograder.config.Dataset``), the grader's side: no code of its own.

The rows come from the description's loader, shuffled and split as the student's loader splits them
(``course_data.load_dataset``, one function for both sides); the labels of the test rows stay here. What
the checks read of a model's outputs follows the description's metric: class scores, a signal score
or a value per row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import course_config
from autograder.config import Dataset
from autograder.datasets.base import Task

_CLASSES: dict[str, type] = {}  # by the description's repr (a Dataset holds a dict: not hashable)


class DescribedTask(Task):
    """The hidden test rows of a described dataset (:meth:`of` makes the class of one description)."""

    description: Dataset

    @classmethod
    def of(cls, description: Dataset) -> type[DescribedTask]:
        """The task class of ``description`` (one per description, so that its facts are class attributes)."""
        key = repr(description)
        if key not in _CLASSES:
            _CLASSES[key] = type(f"{description.name.title().replace('_', '')}Task", (cls,),
                                         {"description": description, "metric_spec": description.metric,
                                          "noun": description.noun})
        return _CLASSES[key]

    @classmethod
    def course_facts(cls, profile: course_config.Profile) -> tuple:
        return (cls.description,)  # the description decides which rows are tested and how

    def __init__(self, profile: course_config.Profile):
        super().__init__(profile)
        from autograder.course_data import load_dataset

        (self.x_train, self.y_train), (self.x_test, self.y_test) = load_dataset(self.description.as_facts(),
                                                                                 test_labels=True)
        self.row_shape = tuple(self.x_test.shape[1:])
        self.n_classes = int(np.max(np.concatenate([self.y_train, self.y_test]))) + 1 \
            if self.metric_spec.outputs == "classes" else None

    @classmethod
    def student_facts(cls, assignment: course_config.Assignment) -> dict:
        d = cls.description
        return {"metric": d.metric.as_facts(), "noun": d.noun, "input_shapes": [list(s) for s in d.input_shapes],
                "raw_scale": d.scale if d.scale != 1 else None, "scale_probe": False,
                "validation_source": {"loader": "dataset_validation", "file": f"{d.name}.npz",
                                      "args": {"description": d.as_facts()}}}

    @classmethod
    def source_text(cls, profile: course_config.Profile) -> str:
        return cls.description.loader

    @classmethod
    def hidden_data_files(cls, profile: course_config.Profile) -> list[Path]:
        return []  # its loader makes the rows wherever the kit runs

    def prediction_inputs(self) -> np.ndarray:
        """The test rows divided by the description's scale, as float32."""
        return np.ascontiguousarray(self.x_test, dtype=np.float32) / np.float32(self.description.scale)

    def input_shape(self, spec: course_config.ModelSpec, model) -> tuple[int, ...]:
        """The model's declared input shape if it is one the description allows (a row's own shape by
        default); a model without one (scikit-learn) gets rows as they are."""
        allowed = tuple(tuple(s) for s in self.description.input_shapes) or (self.row_shape,)
        shape = tuple(getattr(model, "input_shape", None) or ())
        if not shape:
            return self.row_shape
        if shape in allowed:
            return shape
        raise ValueError(f"the model expects inputs of shape {shape}; the grader feeds {self.description.title} "
                         f"{self.noun} as {' or '.join(str(s) for s in allowed)}")

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """The outputs if they are what the metric reads (a row of class scores, a score or a value per row)."""
        n, kind = len(self.x_test), self.metric_spec.outputs
        if kind == "classes":
            expected = [(n, self.n_classes)]
            what = f"one row of {self.n_classes} class scores per {self.noun[:-1] if self.noun.endswith('s') else 'row'}"
        elif kind == "score":
            expected, what = [(n,), (n, 1), (n, 2)], "one signal probability per row"
        else:
            expected, what = [(n,), (n, 1)], "one value per row"
        if outputs.shape not in expected:
            raise ValueError(f"{spec.file} outputs shape {outputs.shape} for {n:,} {self.noun}; expected "
                             f"{' or '.join(str(e) for e in expected)}, {what}")
        if not np.all(np.isfinite(outputs)):
            raise ValueError(f"{spec.file} outputs NaN or infinite values")
        return outputs

    def details(self, spec: course_config.ModelSpec, outputs: dict[str, np.ndarray]) -> dict:
        """A confusion matrix for class scores; the metric alone otherwise."""
        predictions = outputs["test"]
        detail = {"kind": "metric", "file": spec.file, "metric": self.metric_spec.title,
                  "value": self.metric(predictions, self.y_test)}
        if self.metric_spec.outputs == "classes":
            predicted, truth = np.argmax(predictions, axis=1), self.y_test.astype(np.int64)
            k = self.n_classes
            confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
            detail.update(kind="confusion", accuracy=float(np.mean(predicted == truth)), confusion=confusion.tolist(),
                          misclassified=[])
        return detail

    def write_sandbox_data(self, folder: Path) -> None:
        """Training rows and test inputs only, as ``<name>.npz`` (what ``course_data.load_dataset`` reads there)."""
        np.savez(folder / f"{self.description.name}.npz", x_train=self.x_train, y_train=self.y_train, x_test=self.x_test)
