"""susy grading: model families read from the files, ROC AUC on hidden simulated events (quick)."""

from __future__ import annotations

import numpy as np
import pytest

import course_config
from autograder import batch
from autograder.datasets import tasks
from tests.helpers import make_submission

S = course_config.SUSY
FILES = {spec.name: spec.file for spec in S.models}


def grade(tmp_path, files):
    root = tmp_path / "submitted"
    make_submission(root, "s", S.name, files)
    (result,) = batch.grade(S.name, root, tmp_path / "out", profile_name="quick").results
    return {c.id: c for c in result.checks}


def test_right_families_pass_and_auc_is_measured_on_hidden_events(tmp_path, susy_models):
    import skops.io as sio
    from sklearn.metrics import roc_auc_score

    from autograder.datasets.susy_sim import simulate

    checks = grade(tmp_path, {FILES[n]: susy_models / f"{n}.{'keras' if n == 'dnn' else 'skops'}" for n in FILES})
    for cid in ("logreg_family", "trees_family", "dnn_family"):
        assert checks[cid].score == checks[cid].points, checks[cid].output
    data = course_config.SUSY_DATA["quick"]
    X_test, y_test = simulate(data.test_rows, seed=data.test_seed)
    path = susy_models / "logreg.skops"
    logreg = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    auc = roc_auc_score(y_test, logreg.predict_proba(X_test)[:, 1])
    assert f"ROC AUC {auc:.4f}" in checks["logreg_auc"].output
    for cid in ("trees_auc", "dnn_auc"):
        assert "ROC AUC 0." in checks[cid].output


def test_wrong_families_earn_neither_family_nor_auc_points(tmp_path, susy_models):
    checks = grade(tmp_path, {
        FILES["logreg"]: susy_models / "trees.skops",
        FILES["trees"]: susy_models / "logreg.skops",
        FILES["dnn"]: susy_models / "linear.keras",
    })
    assert checks["logreg_family"].score == 0 and "found HistGradientBoostingClassifier" in checks["logreg_family"].output
    assert checks["trees_family"].score == 0 and "found StandardScaler -> LogisticRegression" in checks["trees_family"].output
    assert checks["dnn_family"].score == 0
    # A stronger model saved under the logistic regression's name must not earn its AUC points.
    assert checks["logreg_auc"].score == 0 and "scored only for a logistic regression" in checks["logreg_auc"].output
    assert checks["trees_auc"].score == 0
    # Any Keras model is a network: its AUC is measured even if the architecture check fails.
    assert "ROC AUC" in checks["dnn_auc"].output


def test_pickles_and_foreign_types_are_refused_without_loading(tmp_path, susy_models):
    checks = grade(tmp_path, {
        FILES["logreg"]: susy_models / "pickled.skops",
        FILES["trees"]: susy_models / "foreign.skops",
    })
    assert "is a Python pickle (joblib.dump or pickle.dump)" in checks["logreg_family"].output and checks["logreg_auc"].score == 0
    assert "outside scikit-learn (os.system)" in checks["trees_family"].output and checks["trees_auc"].score == 0
    assert "susy_dnn.keras not found" in checks["dnn_family"].output


def test_probability_shapes_are_accepted_and_others_refused():
    task = tasks.SusyTask.__new__(tasks.SusyTask)
    task.x_test = np.zeros((4, 18), np.float32)
    spec = S.models[0]
    assert task.check_predictions(spec, np.array([[0.9, 0.1]] * 4)).tolist() == pytest.approx([0.1] * 4)
    assert task.check_predictions(spec, np.full((4, 1), 0.3)).shape == (4,)
    with pytest.raises(ValueError, match="one signal probability per event"):
        task.check_predictions(spec, np.zeros((4, 3)))
