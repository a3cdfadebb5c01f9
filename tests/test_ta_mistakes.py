"""A TA's mistakes stop the batch before anyone is graded; the grader's own failures are never kept as done."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import course_config
from autograder import batch
from autograder.grading import submission
from autograder.results import RECORD_FILE
from tests.helpers import make_submission

A = course_config.MNIST_DENSE
REAL_SUSY = Path(os.environ.get("COURSE_DATA_DIR", "/nonexistent")) / "susy_real_10k.csv.gz"


def test_a_partial_susy_file_refuses_the_batch(tmp_path, models_dir):
    """The full profile pointed at 10,000 events (a partial download, or the wrong file): one message that
    names the file, what was expected and what was found; a non-zero exit; nothing graded or kept."""
    if not REAL_SUSY.exists():
        pytest.skip("needs ../shared/data/susy_real_10k.csv.gz (COURSE_DATA_DIR)")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copyfile(REAL_SUSY, data / "SUSY.csv.gz")
    submitted = tmp_path / "submitted"
    make_submission(submitted, "ada", "susy", {"susy_dnn.keras": models_dir / "dense.keras"})
    out = tmp_path / "out"
    env = {**os.environ, "COURSE_DATA_DIR": str(data), "HOME": str(tmp_path / "home")}  # its own parsed-row cache
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", "susy", str(submitted), "--out", str(out),
                           "--profile", "full", "--workers", "1"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(data / "SUSY.csv.gz") in proc.stderr
    assert "gave 0 events of rows 4,500,000-5,000,000" in proc.stderr and "expected 500,000 events" in proc.stderr
    assert "Nothing was graded" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not list(out.rglob(RECORD_FILE))
    doctor = subprocess.run([sys.executable, "-m", "autograder", "doctor"], capture_output=True, text=True, env=env,
                            timeout=600)
    assert "test data, profile full, susy: NOT USABLE: the hidden test data of the 'full' profile is wrong" in doctor.stdout
    assert "test data, profile quick, susy: ok, 20,000 test items (simulated" in doctor.stdout


def test_an_internal_error_is_never_kept_as_done(tmp_path, models_dir, monkeypatch):
    """A result that is the grader's fault is reported, counted, and graded again by the next run."""
    submitted = tmp_path / "submitted"
    make_submission(submitted, "ada", A.name, {A.model_file: models_dir / "dense.keras"})
    make_submission(submitted, "bob", A.name, {A.model_file: models_dir / "dense.keras"})
    out = tmp_path / "out"
    real = submission.metric_values

    def broken(sub, task):  # a grader bug that hits one student
        if sub.student == "bob":
            raise ValueError("Found array with 0 sample(s)")
        return real(sub, task)

    monkeypatch.setattr(submission, "metric_values", broken)
    log = io.StringIO()
    report = batch.grade(A.name, submitted, out, profile_name="quick", workers=1, log=log)
    bob = next(r for r in report.results if r.student == "bob")
    assert bob.score == 0 and "internal grader error (ValueError: Found array with 0 sample(s))" in bob.output
    assert report.internal_errors == ["bob"]
    assert "INTERNAL GRADER ERRORS: 1 (bob)" in log.getvalue()
    assert "Internal grader errors: 1" in (out / "summary.md").read_text()
    monkeypatch.setattr(submission, "metric_values", real)
    again = batch.grade(A.name, submitted, out, profile_name="quick", workers=1, log=io.StringIO())
    assert again.graded == ["bob"] and again.skipped == ["ada"]  # fixed grader, same submission: graded again
    assert next(r for r in again.results if r.student == "bob").score > 0 and not again.internal_errors


def test_a_check_the_grader_cannot_run_counts_as_internal(tmp_path, models_dir, monkeypatch):
    """A check that raises (not a failed assertion) is the grader's fault, not the student's."""
    from autograder import model_checks

    def crash(model, facts):
        raise KeyError("units")

    monkeypatch.setitem(model_checks.ARCHITECTURE, "hidden_layer", crash)
    submitted = tmp_path / "submitted"
    make_submission(submitted, "ada", A.name, {A.model_file: models_dir / "dense.keras"})
    report = batch.grade(A.name, submitted, tmp_path / "out", profile_name="quick", workers=1, log=io.StringIO())
    (ada,) = report.results
    assert ada.internal_errors == ["hidden_layer"] and report.internal_errors == ["ada"]
    out = {c.id: c.output for c in ada.checks}
    assert out["hidden_layer"].startswith("internal grader error: the grader could not run this check (KeyError")
    assert {c.id for c in ada.checks if c.score == c.points} >= {"layer_types", "output_layer", "param_budget"}


def test_saved_susy_models_on_simulated_events_are_flagged(tmp_path, susy_models):
    """quick scores SUSY on simulated events: the TA is warned, the summary and every student's feedback say so."""
    models = susy_models
    submitted = tmp_path / "submitted"
    make_submission(submitted, "ada", "susy", {"susy_logreg.skops": models / "logreg.skops",
                                               "susy_trees.skops": models / "trees.skops",
                                               "susy_dnn.keras": models / "dnn.keras"})
    log = io.StringIO()
    report = batch.grade("susy", submitted, tmp_path / "out", profile_name="quick", workers=1, log=log)
    assert "WARNING: the 'quick' profile scores SUSY models on simulated events" in log.getvalue()
    assert "(autograder grade --execute)" in (tmp_path / "out" / "summary.md").read_text()
    (ada,) = report.results
    assert "scores SUSY models on simulated events" in ada.output
    mnist = io.StringIO()
    make_submission(submitted, "bob", A.name, {})
    batch.grade(A.name, submitted, tmp_path / "out2", profile_name="quick", workers=1, log=mnist)
    assert "simulated" not in mnist.getvalue()  # only where it applies


def test_doctor_names_the_data_of_every_profile():
    proc = subprocess.run([sys.executable, "-m", "autograder", "doctor"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0
    for profile in course_config.PROFILES:
        assert f"test data, profile {profile}, mnist: ok, 10,000 test items" in proc.stdout
        assert f"test data, profile {profile}, susy:" in proc.stdout


def test_a_susy_file_shorter_than_asked_says_so(tmp_path, monkeypatch):
    """A notebook asking for N_TRAIN events from a smaller file is told how many it got."""
    if not REAL_SUSY.exists():
        pytest.skip("needs ../shared/data/susy_real_10k.csv.gz (COURSE_DATA_DIR)")
    from autograder.course_data import load_susy

    shutil.copyfile(REAL_SUSY, tmp_path / "SUSY.csv.gz")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="holds only 10,000 of the 20,000 events asked for"):
        X, y = load_susy(stop=20_000, cache=False)
    assert len(y) == 10_000
