"""Grades that can be trusted: a model trained on the public test set is flagged for review, not just scored."""

from __future__ import annotations

import csv
import sys

import pytest

import course_config
from autograder import batch
from autograder.exporters.gradebook import write_gradebook
from autograder.notebook import nbgrader_env
from tests.helpers import make_submission

A = course_config.MNIST_DENSE


@pytest.fixture(scope="module")
def graded(tmp_path_factory, models_dir, forged_model):
    """An honest student and one whose dense network was trained on the test images themselves."""
    root = tmp_path_factory.mktemp("trust")
    submitted = root / "submitted"
    make_submission(submitted, "cheater", A.name, {A.model_file: forged_model})
    make_submission(submitted, "honest", A.name, {A.model_file: models_dir / "dense.keras"})
    out = root / "out"
    report = batch.grade(A.name, submitted, out, workers=1, log=sys.stdout)
    return {r.student: r for r in report.results}, out


def test_accuracy_above_the_ceiling_is_flagged_with_the_reason(graded):
    results, _ = graded
    cheater, honest = results["cheater"], results["honest"]
    assert honest.flags == []
    (flag,) = cheater.flags
    assert flag["check"] == "test_accuracy" and flag["value"] > A.ceilings["test_accuracy"].value
    assert "above the plausibility ceiling 0.9930" in flag["reason"] and "trained on the test data" in flag["reason"]
    # the score stands until an instructor has looked
    assert next(c for c in cheater.checks if c.id == "test_accuracy").score == A.check("test_accuracy").points


def test_flag_reaches_grades_csv_summary_and_gradebook(graded, tmp_path, monkeypatch):
    results, out = graded
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert "plausibility ceiling" in rows["cheater"]["flagged"] and rows["honest"]["flagged"] == ""
    summary = (out / "summary.md").read_text()
    assert "flagged for review: 1" in summary and "cheater: test\\_accuracy" in summary
    monkeypatch.setenv("PATH", nbgrader_env()["PATH"])  # nbgrader runs alembic to create the database
    write_gradebook(list(results.values()), tmp_path / "gradebook.db")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        grade = gb.find_grade("check_test_accuracy", "mnist_dense", A.name, "cheater")
        assert grade.needs_manual_grade
        assert not gb.find_grade("check_test_accuracy", "mnist_dense", A.name, "honest").needs_manual_grade


def test_ceilings_are_course_facts_above_full_credit():
    for a in course_config.ASSIGNMENTS.values():
        for check_id, ceiling in a.ceilings.items():
            for profile in ceiling.profiles:
                assert ceiling.value > a.threshold(profile, check_id).full_credit, (a.name, check_id, profile)
                assert ceiling.source
