"""SUSY, the grader's side: hidden events (the UCI file's test split, or simulated ones) and ROC curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import course_config
from autograder.config import ROC_AUC
from autograder.course_data import SUSY_FILE_NAMES
from autograder.datasets.base import Task

ROC_POINTS = 201
REFERENCE_CURVES = course_config.COURSE_DIR / "docs" / "reference_roc.json"


class SusyTask(Task):
    """SUSY for the grader: hidden test events and their labels, and training rows for re-execution.

    Which events are used comes from ``course_config.SUSY_DATA[profile]``: the UCI file's standard
    split, or simulated events (training and test drawn with different seeds).
    """

    metric_spec, noun = ROC_AUC, "events"

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
            "auc": self.metric(scores, self.y_test),
            "fpr": fpr,
            "tpr": tpr,
            "reference": reference_curve(self.profile.name, spec.name),
        }

    def write_sandbox_data(self, folder: Path) -> None:
        """Training rows only, in the UCI format, as ``SUSY.csv``."""
        from autograder.datasets.susy_sim import write_uci_csv

        X, y = self._events(test=False)
        write_uci_csv(folder / "SUSY.csv", X, y)

    @classmethod
    def student_facts(cls, assignment: course_config.Assignment) -> dict:
        return {"metric": ROC_AUC.as_facts(), "noun": cls.noun, "input_shapes": [], "raw_scale": None,
                "scale_probe": False,
                "validation_source": {"loader": "susy_validation", "file": SUSY_FILE_NAMES[0],
                                      "args": {"train_rows": course_config.SUSY_DATA["quick"].train_rows,
                                               "share": course_config.SUSY_VALIDATION_SHARE}}}

    @classmethod
    def source_text(cls, profile: course_config.Profile) -> str:
        return course_config.SUSY_DATA[profile.name].source

    @classmethod
    def hidden_data_files(cls, profile: course_config.Profile) -> list[Path]:
        """The UCI SUSY file for profiles that grade on its standard test split; none for simulated events."""
        from autograder.course_data import DATA_DIR_ENV, SUSY_URL, DataError, read_susy_file, susy_candidates
        from autograder.course_data.common import first_readable

        source = course_config.SUSY_DATA[profile.name].source
        if source == "simulated":
            return []
        if source != "uci":
            raise DataError(f"SUSY_DATA[{profile.name!r}] has unknown source {source!r}")
        found, _, tried = first_readable(susy_candidates(),
                                         lambda path: read_susy_file(path, start=0, stop=10, cache=False))
        if found is not None:
            return [found]
        raise DataError(
            "grading SUSY elsewhere needs the UCI SUSY file (its last 500,000 events are the hidden test data of "
            "this profile), and none was found:\n" + "\n".join(tried)
            + f"\nFix: download {SUSY_URL} into a folder and set {DATA_DIR_ENV} to it, "
            "or build with --profile quick (simulated events, no data file)."
        )


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
