"""MNIST, the grader's side: the 10,000 test images and their labels, and the moved digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import course_config
from autograder.config import ACCURACY
from autograder.course_data import MNIST_FILE
from autograder.datasets.base import Task
from autograder.model_checks import MNIST_INPUT_SHAPES, SCALE_PROBE
from autograder.results import MAX_MISCLASSIFIED

SCALE_PROBE_SET = "scale_probe"


class MnistTask(Task):
    """MNIST for the grader: the test images for the sandbox, the labels for the checks.

    With ``"moved"`` among ``test_sets``, the test digits moved by ``course_data.move_digits`` with
    ``course_config.MOVED_DIGITS_SEED`` are a second hidden test set, with the same labels.
    """

    metric_spec, noun = ACCURACY, "images"
    TEST_SETS = ("test", "moved")

    def __init__(self, profile: course_config.Profile | None = None, test_sets: tuple[str, ...] = ("test",)):
        super().__init__(profile or course_config.profile(course_config.DEFAULT_PROFILE))
        from autograder.course_data import load_mnist, move_digits

        unknown = [s for s in test_sets if s not in self.TEST_SETS]
        if unknown or not test_sets or test_sets[0] != "test":
            raise ValueError(f"MNIST test sets are {self.TEST_SETS}, \"test\" first; asked for {test_sets}")
        self.test_sets = tuple(test_sets)
        _, (self.x_test, self.y_test) = load_mnist(parts=("test",))  # the training images only if a notebook runs
        if self.y_test is None:
            raise RuntimeError("the grader's MNIST file has no test labels; point COURSE_DATA_DIR at the full file")
        if "moved" in self.test_sets:
            self.x_moved = move_digits(self.x_test, course_config.MOVED_DIGITS_SEED)

    def inputs_of(self, test_set: str) -> np.ndarray:
        return self.x_moved if test_set == "moved" and "moved" in self.test_sets else super().inputs_of(test_set)

    def probes(self) -> dict[str, np.ndarray]:
        """The first test images as raw 0-255 pixels ("scale_probe"): a model that does far better on them than on
        the [0, 1] pixels it is scored on expects unscaled inputs, and its feedback says so."""
        return {SCALE_PROBE_SET: self.x_test[:SCALE_PROBE].astype(np.float32)}

    def prediction_inputs(self) -> np.ndarray:
        """The images of every test set, one set after the other, scaled to [0, 1] as float32, shape (N, 28, 28),
        then the probes (as they are)."""
        images = np.concatenate([self.inputs_of(s) for s in self.test_sets])
        return np.concatenate([images.astype(np.float32) / course_config.MNIST_PIXEL_SCALE, *self.probes().values()])

    def input_shape(self, spec: course_config.ModelSpec, model) -> tuple[int, ...]:
        """The model's declared input shape if the grader can feed MNIST images in it; else ValueError."""
        shape = tuple(model.input_shape or ())
        if shape in MNIST_INPUT_SHAPES:
            return shape
        raise ValueError(
            f"the model expects inputs of shape {shape or 'unknown'}; the grader feeds MNIST images as "
            "(28, 28), (784,) or (28, 28, 1). Start the model with keras.Input(shape=(28, 28))."
        )

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs if they are one row of 10 finite class scores per image; else ValueError."""
        expected = (self.n_predicted(), 10)
        if outputs.shape != expected:
            raise ValueError(f"the model outputs shape {outputs.shape} for {expected[0]:,} images; expected {expected}, "
                             "one row of 10 class scores per image")
        scored = sum(len(self.inputs_of(s)) for s in self.test_sets)
        if not np.all(np.isfinite(outputs[:scored])):  # on the probe after them, they diagnose only
            raise ValueError("the model outputs NaN or infinite values")
        return outputs

    def details(self, spec: course_config.ModelSpec, outputs: dict[str, np.ndarray]) -> dict:
        """Confusion matrix and the most confident mistakes (at most 12 digits with their labels);
        the same mistakes and the accuracy on the moved digits where they are a test set."""
        predictions = outputs["test"]
        predicted = np.argmax(predictions, axis=1)
        truth = self.y_test.astype(np.int64)
        confusion = np.bincount(truth * 10 + predicted, minlength=100).reshape(10, 10)
        detail = {
            "kind": "confusion",
            "file": spec.file,
            "accuracy": float(np.mean(predicted == truth)),
            "confusion": confusion.tolist(),
            "misclassified": self._mistakes(predictions, self.x_test),
        }
        if "moved" in outputs:
            detail["moved"] = {"accuracy": float(np.mean(np.argmax(outputs["moved"], axis=1) == truth)),
                               "misclassified": self._mistakes(outputs["moved"], self.x_moved)}
        return detail

    def _mistakes(self, predictions: np.ndarray, images: np.ndarray) -> list[dict]:
        """The most confident mistakes, at most 12, with their images."""
        predicted = np.argmax(predictions, axis=1)
        truth = self.y_test.astype(np.int64)
        wrong = np.flatnonzero(predicted != truth)
        confidence = predictions[wrong, predicted[wrong]]
        order = wrong[np.lexsort((wrong, -confidence))][:MAX_MISCLASSIFIED]
        return [{"index": int(i), "true": int(truth[i]), "predicted": int(predicted[i]),
                 "confidence": round(float(predictions[i, predicted[i]]), 4), "image": images[i].tolist()}
                for i in order]

    def write_sandbox_data(self, folder: Path) -> None:
        """Training data and test images only, as ``mnist.npz``."""
        from autograder.course_data import load_mnist

        (x_train, y_train), _ = load_mnist(parts=("train",))
        np.savez(folder / "mnist.npz", x_train=x_train, y_train=y_train, x_test=self.x_test)

    @classmethod
    def student_facts(cls, assignment: course_config.Assignment) -> dict:
        return {"metric": ACCURACY.as_facts(), "noun": cls.noun, "input_shapes": [list(s) for s in MNIST_INPUT_SHAPES],
                "raw_scale": course_config.MNIST_PIXEL_SCALE, "scale_probe": True,
                "validation_source": {"loader": "mnist_validation", "file": MNIST_FILE,
                                      "args": {"rows": course_config.MNIST_VALIDATION_ROWS,
                                               "scale": course_config.MNIST_PIXEL_SCALE},
                                      "moved_seed": course_config.MOVED_CHECK_SEED}}

    @classmethod
    def source_text(cls, profile: course_config.Profile) -> str:
        return MNIST_FILE

    @classmethod
    def hidden_data_files(cls, profile: course_config.Profile) -> list[Path]:
        """The grader's MNIST: the first candidate that validates and holds the test labels."""
        from autograder.course_data import DATA_DIR_ENV, DataError, mnist_candidates, read_mnist_file
        from autograder.course_data.common import first_readable

        def with_labels(path):
            if "y_test" not in read_mnist_file(path):
                raise DataError(f"{path} has no test labels (a sandbox copy?)")

        found, _, tried = first_readable(mnist_candidates(), with_labels)
        if found is not None:
            return [found]
        raise DataError(
            "grading MNIST elsewhere needs MNIST with its test labels (the hidden test data), and none was found:\n"
            + "\n".join(tried) + f"\nFix: set {DATA_DIR_ENV} to a folder holding the full mnist.npz (Keras' copy)."
        )
