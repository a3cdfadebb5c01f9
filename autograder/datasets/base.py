"""What the grader feeds a model and measures: the hidden test data of a dataset (trusted side).

A task holds the test inputs and their labels. The labels never leave this process: the sandbox
gets the inputs only (``predict_data_dir``: ``inputs.npy``), and a re-executed notebook gets the
training data and the test inputs (``sandbox_data_dir``). From the predictions that come back the
task checks their shape, and computes the aggregates the feedback page shows. Each dataset is a
subclass in a module of its own (:mod:`autograder.datasets.mnist`, :mod:`~autograder.datasets.susy`,
:mod:`~autograder.datasets.described`).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

import course_config
from autograder.config import Metric
from autograder.model_checks import measure


class Task:
    """Grader-side data of one dataset: hidden test inputs (``x_test``) and their labels (``y_test``).

    A task may hold more hidden test sets than the dataset's own (``test_sets``, "test" first; MNIST
    has "moved"). The sandbox predicts them all in one job, inputs one set after the other, and
    :meth:`split` cuts the outputs back into one array per set.
    """

    x_test: np.ndarray
    y_test: np.ndarray
    test_sets: tuple[str, ...] = ("test",)
    metric_spec: Metric  # what a threshold is set on (autograder.config.METRICS, or a dataset's own)
    noun = "inputs"  # what one row of the data is, in the student's words

    @classmethod
    def course_facts(cls, profile: course_config.Profile) -> tuple:
        """The course facts beyond the assignment's own that decide its grades under ``profile`` (part of the
        result's fingerprint: autograder.worker.config_digest)."""
        return ()

    def __init__(self, profile: course_config.Profile):
        self.profile = profile
        self._dirs: dict[str, tempfile.TemporaryDirectory] = {}

    @property
    def labels(self) -> np.ndarray:
        return self.y_test

    def inputs_of(self, test_set: str) -> np.ndarray:
        """The raw inputs of one hidden test set."""
        if test_set == "test":
            return self.x_test
        raise KeyError(f"{type(self).__name__} has no test set {test_set!r}")

    def labels_of(self, test_set: str) -> np.ndarray:
        """The labels of one hidden test set (trusted side only)."""
        self.inputs_of(test_set)
        return self.y_test

    # Inputs predicted after the test sets to diagnose a model, never scored: {name: inputs} (see MnistTask).
    def probes(self) -> dict[str, np.ndarray]:
        return {}

    def n_predicted(self) -> int:
        """How many inputs a prediction job predicts: every test set's, then the probes'."""
        return sum(len(self.inputs_of(s)) for s in self.test_sets) + sum(len(p) for p in self.probes().values())

    def split(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """Checked outputs for every test set (and probe) together, as one array per test set (and probe)."""
        names = list(self.test_sets) + list(self.probes())
        sizes = [len(self.inputs_of(s)) for s in self.test_sets] + [len(p) for p in self.probes().values()]
        return dict(zip(names, np.split(outputs, np.cumsum(sizes)[:-1])))

    # -- what the sandbox sees ---------------------------------------------------------------
    def _dir(self, kind: str, fill) -> Path:
        if kind not in self._dirs:
            self._dirs[kind] = tempfile.TemporaryDirectory(prefix=f"autograder-{kind}-")
            folder = Path(self._dirs[kind].name)
            fill(folder)
            folder.chmod(0o755)
            for path in folder.iterdir():
                path.chmod(0o644)
        return Path(self._dirs[kind].name)

    def sandbox_data_dir(self) -> Path:
        """The folder a re-executed notebook sees as ``/data``: training data and test inputs, no test labels."""
        return self._dir("data", self.write_sandbox_data)

    def predict_data_dir(self) -> Path:
        """The folder a prediction job sees as ``/data``: ``inputs.npy``, the test inputs only."""
        return self._dir("inputs", lambda d: np.save(d / "inputs.npy", self.prediction_inputs(), allow_pickle=False))

    def metric(self, outputs: np.ndarray, labels: np.ndarray) -> float:
        """The figure a threshold is set on (accuracy, ROC AUC, ...), from a model's outputs and the labels."""
        return measure(self.metric_spec.as_facts(), outputs, labels)

    # -- what each dataset defines -------------------------------------------------------------
    @classmethod
    def student_facts(cls, assignment: course_config.Assignment) -> dict:
        """What the student's check needs to know of the data, as plain values: ``metric``, ``noun``,
        ``input_shapes`` (the shapes a model may take its inputs in; [] for any), ``raw_scale`` (inputs the
        notebook may hold unscaled are divided by it; None), ``scale_probe`` (whether the check diagnoses a
        model that expects unscaled inputs) and ``validation_source`` (``loader``, a function of
        ``course_data`` that reads the notebook's validation split, its ``args``, and the ``file`` a student
        needs for it)."""
        raise NotImplementedError

    @classmethod
    def source_text(cls, profile: course_config.Profile) -> str:
        """Where the hidden test data of ``profile`` comes from, in a few words (``autograder doctor``)."""
        raise NotImplementedError

    @classmethod
    def hidden_data_files(cls, profile: course_config.Profile) -> list[Path]:
        """The files a grader elsewhere (a Gradescope image) needs to grade under ``profile``; DataError saying
        where it looked if they are not here."""
        raise NotImplementedError

    def write_sandbox_data(self, folder: Path) -> None:
        """Write what a re-executed notebook may read (training data, test inputs; never test labels)."""
        raise NotImplementedError

    def prediction_inputs(self) -> np.ndarray:
        """Every hidden test set's inputs, one after the other, as a prediction job reads them."""
        raise NotImplementedError

    def input_shape(self, spec: course_config.ModelSpec, model) -> tuple[int, ...]:
        """The shape of one input the model takes, from its architecture (ValueError if it takes none of ours)."""
        raise NotImplementedError

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs as the checks read them (ValueError, student-facing, if they cannot be)."""
        raise NotImplementedError

    def details(self, spec: course_config.ModelSpec, outputs: dict[str, np.ndarray]) -> dict:
        """The aggregates the feedback page shows for one model ({test set: outputs} in)."""
        raise NotImplementedError

    def saved_model_caveat(self) -> str | None:
        """Why figures of saved models (not re-executed) on this task may not compare with the student's own, if so."""
        return None

    def fingerprint(self) -> str:
        """A digest of the test inputs and labels: results graded on other data are not reused."""
        h = hashlib.sha256()
        for array in [self.inputs_of(s) for s in self.test_sets] + [self.y_test]:
            h.update(str((array.shape, array.dtype.str)).encode())
            h.update(np.ascontiguousarray(array).tobytes())
        return h.hexdigest()[:16]

    def close(self) -> None:
        for d in self._dirs.values():
            d.cleanup()
        self._dirs.clear()
