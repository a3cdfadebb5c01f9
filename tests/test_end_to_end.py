"""One real end-to-end run per assignment: the CLI re-executes notebooks in the sandbox and grades them."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

import course_config
from autograder import demo
from autograder.release import runnable_solution
from autograder.results import RECORD_FILE, load_records

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list(course_config.ASSIGNMENTS))
def test_grade_execute_quick_reference_full_marks_untouched_release_zero(name, tmp_path, mnist):
    a = course_config.assignment(name)
    submitted = tmp_path / "submitted"
    runnable_solution(a, submitted / "reference" / name)
    shutil.copytree(course_config.COURSE_DIR / "release" / name, submitted / "untouched" / name)
    if name == "mnist_dense":  # determinism: the same notebook run twice grades the same
        runnable_solution(a, submitted / "reference_again" / name)
    # Stale model files next to the untouched notebook must not be graded: only what the run saves counts.
    for spec in a.models:
        shutil.copyfile(course_config.COURSE_DIR / "autograder" / "course_data" / "mnist.py",
                        submitted / "untouched" / name / spec.file)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", name, str(submitted), "--out", str(out), "--execute", "--profile", "quick"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    ref = json.loads((out / "reference" / name / "results.json").read_text())
    untouched = json.loads((out / "untouched" / name / "results.json").read_text())
    assert ref["score"] == ref["max_score"] == a.max_score, ref
    assert untouched["score"] == 0
    assert "NotImplementedError" in untouched["output"]
    executed = json.loads((out / "reference" / name / "executed.ipynb").read_text())
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in executed["cells"]]
    # The helper cell unpacked the course's code in the sandbox; the check cells after the save cell were left
    # out (the grader grades the saved files itself; bench/notebook_only.py runs them, offline).
    helper = executed["cells"][ids.index("fetch_helpers")]
    assert "course helpers" in "".join("".join(o.get("text", "")) for o in helper["outputs"])
    assert not [i for i in ids if i and (i == "hand_in_check" or i.startswith("check_"))]
    if name == "mnist_dense":
        again = json.loads((out / "reference_again" / name / "results.json").read_text())
        assert [(t["name"], t["score"], t["output"]) for t in again["tests"]] == \
               [(t["name"], t["score"], t["output"]) for t in ref["tests"]]
        records = [json.loads((out / s / name / RECORD_FILE).read_text()) for s in ("reference", "reference_again")]
        assert records[0]["details"] == records[1]["details"]  # confusion matrix and mistakes, image for image
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert float(rows["reference"]["score"]) == a.max_score and float(rows["untouched"]["score"]) == 0
    assert "reference" in proc.stdout and "total" in proc.stdout  # the student x check table

    # The model files the re-run saved and were graded are kept beside executed.ipynb: handed in as saved
    # models, they grade the same. Graded again into the same folder, no file of the earlier run stays.
    kept = [out / "reference" / name / spec.file for spec in a.models]
    assert all(path.is_file() for path in kept), sorted(p.name for p in (out / "reference" / name).iterdir())
    assert not any((out / "untouched" / name / spec.file).exists() for spec in a.models)  # the run saved none
    # make demo's class is made from such kept files: its hand-ins that need only this assignment's (the others
    # need another assignment's), graded in the same saved-model batch, end as the demo expects.
    class_dir = tmp_path / "class"
    shutil.copytree(out / "reference", tmp_path / "kept")
    handins = [h for h in demo.HANDINS[name] if not isinstance(h.files, demo.OtherModel)]
    for handin in handins:
        demo.make_handin(handin, a, tmp_path / "kept", class_dir)
    (class_dir / "reference").mkdir()
    shutil.copytree(submitted / "reference" / name, class_dir / "reference" / name)
    for path in kept:
        shutil.copyfile(path, class_dir / "reference" / name / path.name)
    saved = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", name, str(class_dir), "--out", str(out), "--profile", "quick"],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=900,
    )
    assert saved.returncode == 0, saved.stderr
    again = json.loads((out / "reference" / name / "results.json").read_text())
    assert [(t["name"], t["score"]) for t in again["tests"]] == [(t["name"], t["score"]) for t in ref["tests"]]
    assert again["extra_data"]["executed"] is False
    assert not (out / "reference" / name / "executed.ipynb").exists() and not any(p.exists() for p in kept)
    records = {r.student: r for r in load_records(out, name)}
    for handin in handins:
        assert demo.outcome_ok(handin, records[handin.student]), (handin, records[handin.student].to_dict())


def test_cli_reports_usage_errors_without_a_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "mnist_dense", str(tmp_path / "missing"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
