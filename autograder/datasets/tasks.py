"""What the grader feeds a model and measures: the hidden test data of each dataset (trusted side).

A task holds the test inputs and their labels. The labels never leave this process: the sandbox
gets the inputs only (``predict_data_dir``: ``inputs.npy``), and a re-executed notebook gets the
training data and the test inputs (``sandbox_data_dir``). From the predictions that come back the
task checks their shape, and computes the aggregates the feedback page shows (a confusion matrix
and a few misclassified digits for MNIST, ROC curves for SUSY).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

import course_config
from autograder.metrics import accuracy, roc_auc
from autograder.model_checks import MNIST_INPUT_SHAPES, SCALE_PROBE
from autograder.results import MAX_MISCLASSIFIED

ROC_POINTS = 201
SCALE_PROBE_SET = "scale_probe"
REFERENCE_CURVES = course_config.COURSE_DIR / "docs" / "reference_roc.json"


class Task:
    """Grader-side data of one dataset: hidden test inputs (``x_test``) and their labels (``y_test``).

    A task may hold more hidden test sets than the dataset's own (``test_sets``, "test" first; MNIST
    has "moved"). The sandbox predicts them all in one job, inputs one set after the other, and
    :meth:`split` cuts the outputs back into one array per set.
    """

    x_test: np.ndarray
    y_test: np.ndarray
    test_sets: tuple[str, ...] = ("test",)
    metric_name = ""  # the metric's name for the student's check (autograder.model_checks.METRIC_NAMES)
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

    # -- what each dataset defines -------------------------------------------------------------
    @staticmethod
    def metric(outputs: np.ndarray, labels: np.ndarray) -> float:
        """The figure a threshold is set on (accuracy, ROC AUC), from a model's outputs and the labels."""
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


class MnistTask(Task):
    """MNIST for the grader: the test images for the sandbox, the labels for the checks.

    With ``"moved"`` among ``test_sets``, the test digits moved by ``course_data.move_digits`` with
    ``course_config.MOVED_DIGITS_SEED`` are a second hidden test set, with the same labels.
    """

    metric = staticmethod(accuracy)
    metric_name, noun = "accuracy", "images"
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
            "kind": "mnist",
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


class SusyTask(Task):
    """SUSY for the grader: hidden test events and their labels, and training rows for re-execution.

    Which events are used comes from ``course_config.SUSY_DATA[profile]``: the UCI file's standard
    split, or simulated events (training and test drawn with different seeds).
    """

    metric = staticmethod(roc_auc)
    metric_name, noun = "roc_auc", "events"

    @classmethod
    def course_facts(cls, profile: course_config.Profile) -> tuple:
        return (course_config.SUSY_DATA.get(profile.name),)  # which events: the UCI split or simulated ones

    def __init__(self, profile: course_config.Profile):
        super().__init__(profile)
        self.data = course_config.SUSY_DATA[profile.name]
        self.x_test, self.y_test = self._events(test=True)

    def _events(self, *, test: bool):
        d = self.data
        if d.source == "simulated":
            from autograder.datasets.susy_sim import simulate

            return simulate(d.test_rows if test else d.train_rows, seed=d.test_seed if test else d.train_seed)
        from autograder.course_data import SUSY_FEATURES, SUSY_TRAIN_ROWS, DataError, load_susy, susy_candidates

        start, rows = (SUSY_TRAIN_ROWS, d.test_rows) if test else (0, d.train_rows)
        X, y = load_susy(start=start, stop=start + rows)
        counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2) if len(y) else np.zeros(2, dtype=np.int64)
        if len(y) != rows or X.shape[1:] != (len(SUSY_FEATURES),) or len(counts) != 2 or min(counts) == 0:
            found = next((str(p) for _, p in susy_candidates() if p.exists()), "the SUSY file")
            raise DataError(
                f"the {'hidden test' if test else 'training'} data of the '{self.profile.name}' profile is wrong: "
                f"{found} gave {len(y):,} events of rows {start:,}-{start + rows:,} ({X.shape[1] if X.ndim == 2 else 0} "
                f"columns, {int(counts[0]):,} background and {int(counts[-1]) if len(counts) > 1 else 0:,} signal), "
                f"expected {rows:,} events of {len(SUSY_FEATURES)} features with both classes. The UCI file has "
                "5,000,000 rows: is it a partial download or another file? Nothing was graded."
            )
        return X, y

    def saved_model_caveat(self) -> str | None:
        if self.data.source != "simulated":
            return None
        return (f"the '{self.profile.name}' profile scores SUSY models on simulated events (autograder.datasets.susy_sim), "
                "not on the real UCI events a notebook trains on: a saved model trained on real events scores "
                "lower here than on its validation events, and the figure compares only with the same notebook "
                "re-executed under this profile (autograder grade --execute)")

    def prediction_inputs(self) -> np.ndarray:
        """The 18 features of the hidden events, in the UCI normalisation, as float32."""
        return np.ascontiguousarray(self.x_test, dtype=np.float32)

    def input_shape(self, spec: course_config.ModelSpec, model) -> tuple[int, ...]:
        """One event's features; ValueError where the model file says it was trained on another number of them."""
        n = self.x_test.shape[1]
        trained_on = getattr(model, "n_features", None)  # XGBoost and LightGBM files say it
        if trained_on and trained_on != n:
            raise ValueError(f"{model.path.name} was trained on {trained_on} features; the grader feeds all {n} SUSY "
                             "features, in the order load_susy gives them: train it on X as the notebook loads it")
        return (n,)

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """One signal score per event: accepts (N,), (N, 1) or (N, 2) class probabilities; else ValueError."""
        n = len(self.x_test)
        if outputs.shape in ((n,), (n, 1)):
            scores = outputs.reshape(n)
        elif outputs.shape == (n, 2):
            scores = outputs[:, 1]
        else:
            raise ValueError(
                f"{spec.file} outputs shape {outputs.shape}; expected one signal probability per event, "
                f"({n},), ({n}, 1) or ({n}, 2)"
            )
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{spec.file} outputs NaN or infinite values")
        return scores

    def details(self, spec: course_config.ModelSpec, outputs: dict[str, np.ndarray]) -> dict:
        """The ROC curve (at most 201 points) and AUC, with the reference solution's curve when recorded."""
        scores = outputs["test"]
        fpr, tpr = roc_points(scores, self.y_test)
        return {
            "kind": "roc",
            "file": spec.file,
            "auc": roc_auc(scores, self.y_test),
            "fpr": fpr,
            "tpr": tpr,
            "reference": reference_curve(self.profile.name, spec.name),
        }

    def write_sandbox_data(self, folder: Path) -> None:
        """Training rows only, in the UCI format, as ``SUSY.csv``."""
        from autograder.datasets.susy_sim import write_uci_csv

        X, y = self._events(test=False)
        write_uci_csv(folder / "SUSY.csv", X, y)


def roc_points(scores: np.ndarray, labels: np.ndarray, n: int = ROC_POINTS) -> tuple[list[float], list[float]]:
    """The ROC curve sampled at ``n`` evenly spaced false-positive rates (rounded for a small record)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    grid = np.linspace(0.0, 1.0, n)
    return [round(float(v), 5) for v in grid], [round(float(v), 5) for v in np.interp(grid, fpr, tpr)]


def reference_curve(profile: str, model: str) -> dict | None:
    """The reference solution's ROC curve for ``model`` under ``profile`` (docs/reference_roc.json), if recorded."""
    try:
        curves = json.loads(REFERENCE_CURVES.read_text())
        curve = curves[profile][model]
        return {"label": curves.get("label", "reference solution"), **curve}
    except (OSError, ValueError, KeyError, TypeError):
        return None


# The grader-side data behind each `Assignment.dataset`.
TASKS = {"mnist": MnistTask, "susy": SusyTask}


def task_class(dataset: str) -> type[Task]:
    """The grader's description of ``dataset``: an unknown name is an error, never a default."""
    try:
        return TASKS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}: the kit knows {', '.join(sorted(TASKS))} "
                         "(autograder/datasets/tasks.py)") from None


def load_task(assignment: course_config.Assignment, profile: course_config.Profile,
              test_sets: tuple[str, ...] | None = None) -> Task:
    """The test data ``assignment`` is graded on under ``profile`` (its checks' test sets, or ``test_sets``)."""
    test_sets = test_sets or assignment.test_sets
    if test_sets == ("test",):
        return task_class(assignment.dataset)(profile)
    return task_class(assignment.dataset)(profile, test_sets=test_sets)
