"""Grading on a Dask cluster: the same results as the local pool, a killed worker, refused workers, a killed client.

Every scheduler and worker here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import course_config
from autograder import batch, worker
from autograder.results import RECORD_FILE
from tests.helpers import make_submission, train_dense
from tests.test_batch import comparable

A = course_config.MNIST_DENSE
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory, mnist):
    """A model the NumPy engine leaves to Keras (LayerNormalization): its submission takes seconds."""
    import keras

    d = tmp_path_factory.mktemp("slow_model")
    train_dense(mnist, samples=1000, epochs=1, extra=(keras.layers.LayerNormalization(),)).save(d / "layernorm.keras")
    return d / "layernorm.keras"


@pytest.fixture(scope="module")
def klass(tmp_path_factory, models_dir, slow_model):
    """Eight students: good, flawed and broken submissions, four graded through Keras (seconds each)."""
    root = tmp_path_factory.mktemp("submitted")
    m = A.model_file
    for i, name in enumerate(["dense.keras", "no_softmax.keras", "lambda.keras", "legacy.h5"]):
        make_submission(root, f"s{i}", A.name, {m: models_dir / name})
    make_submission(root, "s4", A.name, {m: b"not a zip", "notes.txt": "x"})
    os.symlink("/etc/passwd", root / "s4" / A.name / "passwd")  # a link: noted, never followed, on a worker too
    for i in range(5, 8):
        make_submission(root, f"s{i}", A.name, {m: slow_model})
    return root


@pytest.fixture(scope="module")
def pool_results(klass, tmp_path_factory):
    out = tmp_path_factory.mktemp("pool")
    report = batch.grade(A.name, klass, out, profile_name="quick", workers=2)
    return out, {r.student: comparable(r) for r in report.results}


def records(out: Path) -> dict:
    from autograder.results import load_records

    return {r.student: comparable(r) for r in load_records(out, A.name)}


@pytest.mark.slow
def test_local_cluster_grades_a_class_as_the_local_pool_does(klass, pool_results, tmp_path):
    pool_out, pool = pool_results
    out = tmp_path / "dask"
    report = batch.grade(A.name, klass, out, profile_name="quick", cluster="local:2")
    assert report.workers == 2 and len(report.graded) == 8
    assert {r.student: comparable(r) for r in report.results} == pool == records(out)
    assert (out / "grades.csv").read_text() == (pool_out / "grades.csv").read_text()
    for student in pool:  # the student's files came back whole
        for name in ("results.json", "feedback.md", "feedback.html"):
            assert (out / student / A.name / name).is_file()
    assert "passwd is a symbolic link and was ignored" in pool["s4"]["output"]
    # Skip-if-done, as locally; with nothing to grade no cluster is reached (nothing listens at this address).
    again = batch.grade(A.name, klass, out, profile_name="quick", cluster="tcp://127.0.0.1:9")
    assert again.graded == [] and len(again.skipped) == 8
    assert records(out) == pool


def test_a_local_cluster_listens_on_127_0_0_1_only():
    import psutil

    from autograder.cluster import DaskExecutor

    executor = DaskExecutor("local:2")
    try:
        me = psutil.Process()
        listening = [c.laddr for p in [me, *me.children(recursive=True)] for c in p.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN]
    finally:
        executor.close()
    assert len(listening) >= 4  # the scheduler (comm, HTTP) and each worker
    assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening
    assert 8787 not in {addr.port for addr in listening}  # no fixed port another grader's cluster could hold


@pytest.fixture
def scheduler():
    """A Dask scheduler on 127.0.0.1 with no workers of its own: its address."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
    try:
        yield cluster
    finally:
        cluster.close()


def start_worker(address: str, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """A `dask worker` process on 127.0.0.1 running the kit found in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen([str(Path(sys.executable).with_name("dask")), "worker", address, "--nworkers", "1",
                             "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_workers(cluster, n: int) -> None:
    from distributed import Client

    with Client(cluster.scheduler_address) as client:
        client.wait_for_workers(n, timeout=180)


def stop(procs) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.mark.slow
def test_a_worker_with_another_kit_course_or_data_is_refused(klass, scheduler, tmp_path):
    other_kit = tmp_path / "other-kit"
    shutil.copytree(ROOT / "autograder", other_kit / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "course_config.py", other_kit / "course_config.py")
    with open(other_kit / "autograder" / "results.py", "a") as f:
        f.write("\n# a change: another version of the kit\n")
    (tmp_path / "no-data").mkdir()
    other_course = tmp_path / "other-course"  # this kit, another course_config: one limit changed
    shutil.copytree(ROOT / "autograder", other_course / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    text = (ROOT / "course_config.py").read_text()
    (other_course / "course_config.py").write_text(text + "\nLIMITS = Limits(**{**LIMITS.__dict__, 'max_submission_mb': "
                                                          "LIMITS.max_submission_mb + 1})\n")
    workers = [start_worker(scheduler.scheduler_address, other_kit),
               start_worker(scheduler.scheduler_address, ROOT, {"COURSE_DATA_DIR": str(tmp_path / "no-data"),
                                                               "HOME": str(tmp_path / "home")}),
               start_worker(scheduler.scheduler_address, other_course)]
    try:
        wait_for_workers(scheduler, 3)
        out = tmp_path / "out"
        with pytest.raises(RuntimeError) as refused:
            batch.grade(A.name, klass, out, profile_name="quick", cluster=scheduler.scheduler_address)
    finally:
        stop(workers)
    message = str(refused.value)
    assert "nothing was graded" in message
    assert f"runs kit {worker.kit_version()}" not in message and "install the same kit on every worker" in message
    assert "cannot load mnist_dense's test data" in message and "set COURSE_DATA_DIR on the worker" in message
    assert message.count("grades mnist_dense by other course facts") == 1
    assert "give every worker this course_config.py" in message
    assert message.count("worker tcp://127.0.0.1:") == 3  # each named, once
    assert not list(out.glob(f"*/{A.name}/{RECORD_FILE}"))


@pytest.mark.slow
def test_a_worker_killed_mid_batch_costs_no_result(klass, pool_results, scheduler, tmp_path):
    from distributed import Client

    workers = [start_worker(scheduler.scheduler_address, ROOT) for _ in range(2)]
    try:
        wait_for_workers(scheduler, 2)
        out = tmp_path / "out"
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(report=batch.grade(
            A.name, klass, out, profile_name="quick", cluster=scheduler.scheduler_address)))
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(out.glob(f"*/{A.name}/{RECORD_FILE}")):
            time.sleep(0.05)
        with Client(scheduler.scheduler_address) as client:
            pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)  # one Dask worker process, mid-batch
        thread.join(timeout=600)
    finally:
        stop(workers)
    assert not thread.is_alive()
    assert len(list(out.glob(f"*/{A.name}/{RECORD_FILE}"))) == 8
    assert {r.student: comparable(r) for r in outcome["report"].results} == pool_results[1] == records(out)


@pytest.mark.slow
def test_rerun_after_the_client_was_killed_grades_only_what_is_missing(klass, pool_results, tmp_path):
    argv = [sys.executable, "-m", "autograder", "grade", A.name, str(klass), "--profile", "quick",
            "--cluster", "local:2", "--out", str(tmp_path / "out")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "out"
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob(f"*/{A.name}/{RECORD_FILE}")):
        assert proc.poll() is None
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the client, its local cluster and everything it started
    proc.wait()
    committed = len(list(out.glob(f"*/{A.name}/{RECORD_FILE}")))
    assert 1 <= committed < 8, "the client should have been killed mid-way"
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"{8 - committed} to grade, {committed} unchanged" in resumed.stderr
    assert records(out) == pool_results[1]


def test_cluster_address_errors_are_clear(klass, tmp_path):
    with pytest.raises(ValueError, match="give local:N with N >= 1"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="local:0")
    with pytest.raises(ValueError, match="--gpus-per-task needs --cluster"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", gpus_per_task=1)
    with pytest.raises(ValueError, match="--gpus-per-task is for re-running notebooks"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="local:1", gpus_per_task=1)
    with pytest.raises(ValueError, match="give a Dask scheduler's address"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="my-cluster")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_scheduler_out_of_reach_is_named(klass, tmp_path, monkeypatch):
    from autograder import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(RuntimeError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 .*Nothing was graded"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="tcp://127.0.0.1:9")
    assert not list((tmp_path / "out").glob(f"*/{A.name}/{RECORD_FILE}"))


def test_a_scheduler_no_worker_joins_is_refused_after_waiting(klass, scheduler, tmp_path, monkeypatch):
    from autograder import cluster

    monkeypatch.setattr(cluster, "WAIT_FOR_WORKERS_S", 1)
    with pytest.raises(RuntimeError, match="no worker joined the Dask cluster at tcp://127.0.0.1:.* within 1 s"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster=scheduler.scheduler_address)
    assert not list((tmp_path / "out").glob(f"*/{A.name}/{RECORD_FILE}"))


@pytest.mark.slow
def test_gpu_tasks_are_refused_where_no_sandboxed_notebook_could_use_a_gpu(klass, scheduler, tmp_path):
    from autograder.sandbox.gpus import gpu_devices

    out = tmp_path / "out"
    workers = [start_worker(scheduler.scheduler_address, ROOT)]  # a worker without GPU resources, not yet joined
    try:  # the grader waits for the cluster's first worker
        with pytest.raises(RuntimeError) as refused:  # no task could ever start: refused, not left waiting
            batch.grade(A.name, klass, out, profile_name="quick", execute=True, cluster=scheduler.scheduler_address,
                        gpus_per_task=1)
    finally:
        stop(workers)
    assert "no worker of the cluster offers 1 GPU(s)" in str(refused.value)
    assert "--resources GPU=<their GPUs>" in str(refused.value)
    if not gpu_devices():  # this machine: a worker that offers a GPU it does not have
        with pytest.raises(RuntimeError) as refused:
            batch.grade(A.name, klass, out, profile_name="quick", execute=True, cluster="local:1", gpus_per_task=1)
        message = str(refused.value)
        assert "nothing was graded" in message and message.count("worker tcp://127.0.0.1:") == 1
        assert "offers GPU resources, but a sandboxed notebook there could not use a GPU: no GPU device" in message
    assert not list(out.glob(f"*/{A.name}/{RECORD_FILE}"))


def readme_examples() -> list[tuple[str, str]]:
    """The "On a cluster" section's (Python example, job script excerpt) pairs."""
    import re

    text = (ROOT / "README.md").read_text()
    section = text[text.index("## On a cluster"):]
    section = section[: section.index("\n## ", 3)]
    blocks = re.findall(r"```(python|text)\n(.*?)```", section, re.S)
    pairs = []
    for (kind, code), (next_kind, script) in zip(blocks, blocks[1:]):
        if kind == "python" and next_kind == "text":
            pairs.append((code, script))
    return pairs


@pytest.mark.parametrize("example", range(2), ids=["slurm", "htcondor"])
def test_readme_job_scripts(example):
    """The README's SLURMCluster and HTCondorCluster make the job scripts it shows (no scheduler of theirs is used)."""
    import re

    code, script = readme_examples()[example]
    construction = code.split("\n\n")[:2]  # the import, then the cluster (the rest scales and waits)
    assert 'scheduler_options={"port": 8786}' in construction[1]
    namespace: dict = {}
    exec("\n\n".join(construction).replace(  # here on 127.0.0.1 only, any free port
        'scheduler_options={"port": 8786}', 'scheduler_options={"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"}'),
        namespace)
    cluster = namespace["cluster"]
    try:
        made = cluster.job_script()
    finally:
        cluster.close()
    made = re.sub(r"tcp://127\.0\.0\.1:\d+", "tcp://SCHEDULER", made).replace("--name dummy-name", "--name NAME")
    lines = made.splitlines()
    for line in script.strip().splitlines():
        assert line in lines, f"the README's job script says {line!r}; dask-jobqueue makes:\n{made}"


@pytest.mark.slow
def test_a_submission_that_keeps_killing_workers_costs_only_its_own_result(klass, pool_results, tmp_path):
    """With Dask allowing no failures, a task on a killed worker is given up: that student gets a clear internal
    error (graded again on the next run), everyone else their result."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40)
    workers = [start_worker(cluster.scheduler_address, ROOT) for _ in range(2)]
    out = tmp_path / "out"
    try:
        wait_for_workers(cluster, 2)
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(report=batch.grade(
            A.name, klass, out, profile_name="quick", cluster=cluster.scheduler_address)))
        thread.start()
        deadline = time.monotonic() + 300
        with Client(cluster.scheduler_address) as client:
            while time.monotonic() < deadline and not any(client.processing().values()):
                time.sleep(0.02)
            busy = next(w for w, keys in client.processing().items() if keys)
            os.kill(client.run(os.getpid, workers=[busy])[busy], signal.SIGKILL)  # a worker mid-task
        thread.join(timeout=600)
        assert not thread.is_alive()
        report = outcome["report"]
        lost = report.internal_errors
        assert lost, "the killed worker's task should have been given up"
        for r in report.results:
            if r.student in lost:
                assert "the grading worker died again and again while grading this submission" in r.output
            else:
                assert comparable(r) == pool_results[1][r.student]
        again = batch.grade(A.name, klass, out, profile_name="quick", cluster=cluster.scheduler_address)
        assert sorted(again.graded) == sorted(lost)
        assert records(out) == pool_results[1]
    finally:
        stop(workers)
        cluster.close()
