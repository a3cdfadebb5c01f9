"""Class-scale grading: workers, committed results, resume after kill -9, skip unchanged, summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import course_config
from autograder import batch, worker
from autograder.results import RECORD_FILE, load_records
from tests.helpers import make_submission, train_dense

A = course_config.MNIST_DENSE


def comparable(result) -> dict:
    """A result without its timings, CPU time and peak memory (they differ from run to run)."""
    data = result.to_dict()
    data.pop("seconds")
    extra = data.get("extra", {})
    extra.pop("grader", None)  # which worker graded it
    jobs = [extra.get("execution", {})] + [m.get("prediction", {}) for m in extra.get("models", {}).values()]
    for usage in jobs:
        for key in ("seconds", "cpu_seconds", "peak_memory_mb", "phases"):
            usage.pop(key, None)
    return data


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory, mnist):
    """A model the NumPy engine leaves to Keras (LayerNormalization): its student takes seconds."""
    import keras

    d = tmp_path_factory.mktemp("slow_model")
    model = train_dense(mnist, samples=1000, epochs=1, extra=(keras.layers.LayerNormalization(),))
    model.save(d / "layernorm.keras")
    return d / "layernorm.keras"


@pytest.fixture(scope="module")
def klass(tmp_path_factory, models_dir, slow_model):
    """A class of 12: good, flawed and broken submissions, four of them graded through Keras (slow)."""
    root = tmp_path_factory.mktemp("submitted")
    m = A.model_file
    kinds = ["dense.keras", "no_softmax.keras", "conv.keras", "flat_input.keras", "lambda.keras", "legacy.h5"]
    for i, name in enumerate(kinds):
        make_submission(root, f"s{i:02d}", A.name, {m: models_dir / name})
    make_submission(root, "s06", A.name, {A.notebook: "{}"})  # no model
    make_submission(root, "s07", A.name, {m: b"not a zip"})
    for i in range(8, 12):
        make_submission(root, f"s{i:02d}", A.name, {m: slow_model})
    return root


def records(out: Path) -> dict[str, dict]:
    return {r.student: comparable(r) for r in load_records(out, A.name)}


def test_parallel_equals_serial_and_regrading_is_deterministic(klass, tmp_path):
    batch.grade(A.name, klass, tmp_path / "serial", profile_name="quick", workers=1)
    parallel = batch.grade(A.name, klass, tmp_path / "parallel", profile_name="quick", workers=2)
    assert parallel.workers == 2 and len(parallel.graded) == 12
    assert records(tmp_path / "serial") == records(tmp_path / "parallel")
    assert [r.student for r in parallel.results] == [f"s{i:02d}" for i in range(12)]
    # The NumPy engine made the fast students' predictions, Keras the LayerNormalization ones.
    engines = {r.student: r.extra.get("models", {}).get("model", {}).get("engine", "") for r in parallel.results}
    assert engines["s00"] == "numpy" and engines["s08"].startswith("keras")
    again = batch.grade(A.name, klass, tmp_path / "serial", profile_name="quick", workers=2, regrade=True)
    assert len(again.graded) == 12
    assert records(tmp_path / "serial") == records(tmp_path / "parallel")
    assert (tmp_path / "parallel" / "grades.csv").read_text() == (tmp_path / "serial" / "grades.csv").read_text()


def test_unchanged_submissions_are_skipped_and_changed_ones_regraded(klass, tmp_path, models_dir):
    import shutil

    root = tmp_path / "submitted"
    shutil.copytree(klass, root)
    out = tmp_path / "out"
    first = batch.grade(A.name, root, out, profile_name="quick", workers=2)
    assert len(first.graded) == 12 and first.skipped == []
    second = batch.grade(A.name, root, out, profile_name="quick", workers=2)
    assert second.graded == [] and len(second.skipped) == 12
    assert [comparable(r) for r in second.results] == [comparable(r) for r in first.results]
    # s01 fixes the softmax: only s01 is graded again, and now passes the output check.
    shutil.copyfile(models_dir / "dense.keras", root / "s01" / A.name / A.model_file)
    third = batch.grade(A.name, root, out, profile_name="quick", workers=2)
    assert third.graded == ["s01"]
    s01 = next(r for r in third.results if r.student == "s01")
    assert {c.id: c.score for c in s01.checks}["output_layer"] == 1
    # Another profile (other thresholds) is a change of configuration: everything is graded again.
    fourth = batch.grade(A.name, root, out, profile_name="full", workers=2)
    assert len(fourth.graded) == 12


def test_fingerprint_follows_content_config_profile_and_kit(tmp_path):
    folder = make_submission(tmp_path, "x", A.name, {"a.txt": "one"})
    cfg = batch.config_digest(A, course_config.profile("quick"), False)
    fp = batch.fingerprint(folder, cfg, "data")
    assert batch.fingerprint(folder, cfg, "data") == fp
    (folder / "a.txt").write_text("two")
    assert batch.fingerprint(folder, cfg, "data") != fp
    assert batch.config_digest(A, course_config.profile("full"), False) != cfg
    assert batch.config_digest(A, course_config.profile("quick"), True) != cfg
    assert batch.config_digest(course_config.MNIST_CNN, course_config.profile("quick"), False) != cfg
    assert worker.kit_version() in fp


def test_summary_and_grades_csv_are_rebuilt_from_the_records(klass, tmp_path):
    out = tmp_path / "out"
    report = batch.grade(A.name, klass, out, profile_name="quick", workers=2)
    text = (out / "summary.md").read_text()
    assert f"# {A.name}: summary of 12 graded submission(s)" in text
    assert "median" in text and "Checks failed most often" in text
    # Every student failed the accuracy check or lost it to a broken model: it leads the list.
    failed = dict(batch.summary.stats(report.results)["failed_checks"])
    assert failed["test_accuracy"] == sum(1 for r in report.results if r.checks[-1].score < r.checks[-1].points)
    assert "| test_accuracy |" in text
    (out / "grades.csv").unlink()
    batch.grade(A.name, klass, out, profile_name="quick", workers=1)
    assert (out / "grades.csv").read_text().count("\n") == 13


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
                if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError):
                pass
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume_equals_an_uninterrupted_run(klass, tmp_path):
    argv = [sys.executable, "-m", "autograder", "grade", A.name, str(klass), "--profile", "quick", "--workers", "2"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "killed"
    proc = subprocess.Popen(argv + ["--out", str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(out.glob(f"*/{A.name}/{RECORD_FILE}"))) < 2:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    workers = children_of(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = len(list(out.glob(f"*/{A.name}/{RECORD_FILE}")))
    assert 2 <= committed < 12, "the batch should have been killed mid-way"
    # Nothing of the killed grader keeps running: its workers (and their sandboxes) die with it.
    time.sleep(3)
    assert workers and not [pid for pid in workers if alive(pid)]
    assert len(list(out.glob(f"*/{A.name}/{RECORD_FILE}"))) == committed
    for path in out.glob(f"*/{A.name}/{RECORD_FILE}"):
        json.loads(path.read_text())  # every committed record is whole

    resumed = subprocess.run(argv + ["--out", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{12 - committed} to grade, {committed} unchanged" in resumed.stderr
    full = subprocess.run(argv + ["--out", str(tmp_path / "full")], env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr
    assert records(out) == records(tmp_path / "full")
    assert (out / "grades.csv").read_text() == (tmp_path / "full" / "grades.csv").read_text()
    assert "failures per check:" in resumed.stderr and "time and memory limits hit:" in resumed.stderr


def without_cgroups(monkeypatch):
    """Make this machine look like one without usable cgroups (the memory limit is then only polled)."""
    from autograder.sandbox import cgroups

    monkeypatch.setattr(cgroups, "support", lambda: cgroups.Support(0, None, None, "no cgroup file system"))


def test_strict_mode_refuses_to_grade_without_kernel_limits(klass, tmp_path, monkeypatch, capsys):
    without_cgroups(monkeypatch)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="strict mode: the kernel does not enforce") as info:
        batch.grade("mnist_dense", klass, out, workers=1, strict=True, log=sys.stdout)
    assert "memory: polled" in str(info.value)
    assert not (out / "grades.csv").exists()  # nothing was graded


def test_without_kernel_limits_grading_warns_loudly(klass, tmp_path, monkeypatch):
    without_cgroups(monkeypatch)
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        report = batch.grade("mnist_dense", klass, tmp_path / "out", students=["s00"], workers=1, log=f)
    assert "WARNING: a sandbox limit the kernel does not enforce here: memory: polled" in log.read_text()
    assert report.results[0].score > 0  # graded all the same (the memory limit polled)
