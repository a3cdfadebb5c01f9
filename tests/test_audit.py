"""The audit: re-running a sample of notebooks catches a saved model its own notebook cannot produce."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

import course_config
from autograder import audit
from autograder.results import RECORD_FILE
from tests.helpers import make_submission

pytestmark = pytest.mark.slow
A = course_config.MNIST_DENSE


def test_choose_is_seeded_and_always_includes_flagged_students():
    students = [f"s{i:02d}" for i in range(40)]
    first = audit.choose(students, {"s07"}, 0.1, seed=3)
    assert first == audit.choose(students, {"s07"}, 0.1, seed=3)  # the same seed, the same sample
    assert first != audit.choose(students, {"s07"}, 0.1, seed=4)
    assert first["s07"] == "flagged" and sum(v == "sample" for v in first.values()) in (3, 4)
    assert list(audit.choose(students, set(), 0.001, seed=0).values()) == ["sample"]  # at least one
    with pytest.raises(ValueError, match="between 0 and 1"):
        audit.choose(students, set(), 1.5, seed=0)


@pytest.mark.parametrize("where", [[], ["--cluster", "local:2"]], ids=["local-pool", "dask-cluster"])
def test_audit_flags_a_forged_model_and_a_notebook_that_makes_none(where, tmp_path, models_dir, forged_model):
    submitted = tmp_path / "submitted"
    solution = course_config.COURSE_DIR / "solutions" / A.name / A.notebook
    release = course_config.COURSE_DIR / "release" / A.name / A.notebook
    forged = forged_model
    make_submission(submitted, "forger", A.name, {A.notebook: solution, A.model_file: forged})
    make_submission(submitted, "honest", A.name, {A.notebook: solution, A.model_file: models_dir / "dense.keras"})
    make_submission(submitted, "no-notebook-work", A.name, {A.notebook: release, A.model_file: models_dir / "dense.keras"})
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", A.name, str(submitted), "--out", str(out), "--audit", "1", *where],
        capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    if where:  # the batch, the audit's re-runs of the three notebooks and its saved-model scores: on the cluster
        assert "re-executing notebooks, profile quick; sandbox" in proc.stderr
        runs = [line for line in proc.stderr.splitlines() if line.startswith("grading mnist_dense: ")]
        assert len(runs) == 3 and all(line.endswith("a local Dask cluster of 2 worker process(es)") for line in runs), runs
    records = {s: json.loads((out / s / A.name / RECORD_FILE).read_text()) for s in ("forger", "honest", "no-notebook-work")}
    reasons = {s: " ".join(f["reason"] for f in r["flags"]) for s, r in records.items()}
    # the forger is flagged twice: above the ceiling, and far above what its own notebook trains
    assert "plausibility ceiling" in reasons["forger"] and "when the notebook is re-run (profile quick)" in reasons["forger"]
    assert reasons["honest"] == ""  # a saved model below what its notebook trains is fine
    assert "did not produce a model" in reasons["no-notebook-work"]
    report = (out / audit.AUDIT_DIR / audit.AUDIT_REPORT).read_text()
    assert "| forger | flagged | test\\_accuracy |" in report or "| forger | flagged | test_accuracy |" in report
    assert "| honest | sample |" in report
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert "audit:" in rows["forger"]["flagged"]
    assert records["forger"]["checks"][-1]["score"] == A.check("test_accuracy").points  # scores stand
