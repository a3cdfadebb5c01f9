"""Grading on a Dask cluster: the same results as the local pool, a killed worker, refused workers, a killed client.

Every scheduler and worker here listens on 127.0.0.1 only.
"""

from __future__ import annotations

import io
import os
import re
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
    # Each result names its worker; the summary counts the workers that graded.
    assert len({r.extra["grader"]["worker"] for r in report.results}) == report.workers
    # Skip-if-done, as locally; with nothing to grade no cluster is reached (nothing listens at this address).
    again = batch.grade(A.name, klass, out, profile_name="quick", cluster="tls://127.0.0.1:9")
    assert again.graded == [] and len(again.skipped) == 8 and again.workers == 0
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


class Scheduler:
    """A Dask scheduler on 127.0.0.1 with TLS certificates of its own and no workers: what a test needs of it."""

    def __init__(self, tmp_path: Path, **config):
        import dask
        from distributed import LocalCluster, Security

        from autograder.serve import write_credentials

        self.security = Security.temporary()
        with dask.config.set(config):
            self.cluster = LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40,
                                        security=self.security)
        self.address = self.cluster.scheduler_address
        self.credentials = write_credentials(tmp_path / "grading-cluster.json", self.address, self.security)
        self.pem = {}  # a worker's certificate files, as dask-jobqueue writes them for its jobs
        tls = self.security.get_tls_config_for_role("worker")
        for key in ("ca_file", "cert", "key"):
            path = tmp_path / f"worker-{key}.pem"
            path.write_text(tls[key])
            path.chmod(0o600)
            self.pem[key] = path

    def client(self):
        from distributed import Client

        return Client(self.address, security=self.security)

    def close(self) -> None:
        self.cluster.close()


@pytest.fixture
def scheduler(tmp_path):
    """A TLS Dask scheduler on 127.0.0.1 with no workers of its own; its credentials file for the grader."""
    s = Scheduler(tmp_path)
    try:
        yield s
    finally:
        s.close()


def start_worker(scheduler: Scheduler, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """A `dask worker` process on 127.0.0.1 running the kit found in ``cwd``, holding the scheduler's certificates."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    tls = ["--tls-ca-file", str(scheduler.pem["ca_file"]), "--tls-cert", str(scheduler.pem["cert"]),
           "--tls-key", str(scheduler.pem["key"])]
    return subprocess.Popen([str(Path(sys.executable).with_name("dask")), "worker", scheduler.address, "--nworkers", "1",
                             "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", *tls], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_workers(scheduler: Scheduler, n: int) -> None:
    with scheduler.client() as client:
        client.wait_for_workers(n, timeout=180)


def stop(procs) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def in_thread(outcome: dict, grade):
    """A thread's target: ``grade()``'s report in ``outcome["report"]``, or the traceback of what it raised."""
    def run():
        try:
            outcome["report"] = grade()
        except BaseException:
            import traceback

            outcome["error"] = traceback.format_exc()
    return run


def other_course(tmp_path: Path, text: str) -> Path:
    """A copy of this kit whose course_config.py ends with ``text`` (other course facts)."""
    kit = tmp_path / "other-course"
    shutil.copytree(ROOT / "autograder", kit / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    (kit / "course_config.py").write_text((ROOT / "course_config.py").read_text() + text)
    return kit


@pytest.mark.slow
def test_a_worker_with_another_kit_course_or_data_is_refused(klass, scheduler, tmp_path):
    other_kit = tmp_path / "other-kit"
    shutil.copytree(ROOT / "autograder", other_kit / "autograder", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "course_config.py", other_kit / "course_config.py")
    with open(other_kit / "autograder" / "results.py", "a") as f:
        f.write("\n# a change: another version of the kit\n")
    (tmp_path / "no-data").mkdir()
    # this kit, another course_config: one limit changed
    course = other_course(tmp_path, "\nLIMITS = Limits(**{**LIMITS.__dict__, 'max_submission_mb': "
                                    "LIMITS.max_submission_mb + 1})\n")
    workers = [start_worker(scheduler, other_kit),
               start_worker(scheduler, ROOT, {"COURSE_DATA_DIR": str(tmp_path / "no-data"),
                                              "HOME": str(tmp_path / "home")}),
               start_worker(scheduler, course)]
    try:
        wait_for_workers(scheduler, 3)
        out = tmp_path / "out"
        with pytest.raises(RuntimeError) as refused:
            batch.grade(A.name, klass, out, profile_name="quick", cluster=str(scheduler.credentials))
    finally:
        stop(workers)
    message = str(refused.value)
    assert "nothing was graded" in message
    assert f"runs kit {worker.kit_version()}" not in message and "install the same kit on every worker" in message
    assert "cannot load mnist_dense's test data" in message and "set COURSE_DATA_DIR on the worker" in message
    assert message.count("grades mnist_dense by other course facts") == 1
    assert "give every worker this course_config.py" in message
    assert message.count("worker tls://127.0.0.1:") == 3  # each named, once
    assert not list(out.glob(f"*/{A.name}/{RECORD_FILE}"))


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
    with pytest.raises(ValueError, match=r"give the credentials file serve\(cluster, ...\) wrote"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="my-cluster")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_scheduler_out_of_reach_is_named(klass, tmp_path, monkeypatch):
    from autograder import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(RuntimeError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 .*Nothing was graded"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster="tcp://127.0.0.1:9", insecure=True)
    assert not list((tmp_path / "out").glob(f"*/{A.name}/{RECORD_FILE}"))


def test_a_scheduler_no_worker_joins_is_refused_after_waiting(klass, scheduler, tmp_path, monkeypatch):
    from autograder import cluster

    monkeypatch.setattr(cluster, "WAIT_FOR_WORKERS_S", 1)
    with pytest.raises(RuntimeError, match="no worker joined the Dask cluster at tls://127.0.0.1:.* within 1 s"):
        batch.grade(A.name, klass, tmp_path / "out", profile_name="quick", cluster=str(scheduler.credentials))
    assert not list((tmp_path / "out").glob(f"*/{A.name}/{RECORD_FILE}"))


@pytest.mark.slow
def test_gpu_tasks_are_refused_where_no_sandboxed_notebook_could_use_a_gpu(klass, scheduler, tmp_path):
    from autograder.sandbox.gpus import gpu_devices

    out = tmp_path / "out"
    workers = [start_worker(scheduler, ROOT)]  # a worker without GPU resources, not yet joined
    try:  # the grader waits for the cluster's first worker
        with pytest.raises(RuntimeError) as refused:  # no task could ever start: refused, not left waiting
            batch.grade(A.name, klass, out, profile_name="quick", execute=True, cluster=str(scheduler.credentials),
                        gpus_per_task=1)
    finally:
        stop(workers)
    assert "offers no 1 GPU(s)" in str(refused.value)
    assert "--resources GPU=<their GPUs>" in str(refused.value)
    if not gpu_devices():  # this machine: a worker that offers a GPU it does not have
        with pytest.raises(RuntimeError) as refused:
            batch.grade(A.name, klass, out, profile_name="quick", execute=True, cluster="local:1", gpus_per_task=1)
        message = str(refused.value)
        assert "nothing was graded" in message and message.count("worker tls://127.0.0.1:") == 1
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
def test_readme_job_scripts(example, tmp_path, monkeypatch):
    """The README's SLURMCluster and HTCondorCluster make the job scripts it shows, and serve finds them closed to the
    network (no scheduler of theirs is used)."""
    import re

    from autograder.serve import exposure_problems

    code, script = readme_examples()[example]
    *construction, last = code.strip().split("\n\n")  # the imports and the cluster, then serve(...)
    assert last.startswith("serve(cluster, jobs=")
    options = 'scheduler_options={"port": 8786, "dashboard_address": "127.0.0.1:8787"}'
    assert options in construction[-1]
    monkeypatch.setenv("HOME", str(tmp_path))  # shared_temp_directory="~": the workers' certificates
    namespace: dict = {}
    exec("\n\n".join(construction).replace(  # here on 127.0.0.1 only, any free port
        options, 'scheduler_options={"host": "127.0.0.1", "port": 0, "dashboard_address": "127.0.0.1:0"}'), namespace)
    cluster = namespace["cluster"]
    try:
        made = cluster.job_script()
        assert exposure_problems(cluster) == []
        assert sorted(p.stat().st_mode & 0o777 for p in tmp_path.glob(".dask-jobqueue.worker.*")) == [0o600] * 3
    finally:
        cluster.close()
    made = re.sub(r"tls://127\.0\.0\.1:\d+", "tls://SCHEDULER", made).replace("--name dummy-name", "--name NAME")
    made = re.sub(r"(\.dask-jobqueue\.worker\.\w+?)\.\w{8}\b", r"\1.XXXXXXXX", made)  # temporary files' names
    lines = made.splitlines()
    for line in script.strip().splitlines():
        assert line in lines, f"the README's job script says {line!r}; dask-jobqueue makes:\n{made}"


@pytest.mark.slow
def test_a_submission_that_keeps_killing_workers_costs_only_its_own_result(klass, pool_results, tmp_path):
    """With Dask allowing no failures, a task on a killed worker is given up: that student gets a clear internal
    error (graded again on the next run), everyone else their result."""
    cluster = Scheduler(tmp_path, **{"distributed.scheduler.allowed-failures": 0})
    workers = [start_worker(cluster, ROOT) for _ in range(2)]
    out = tmp_path / "out"
    try:
        wait_for_workers(cluster, 2)
        outcome = {}
        thread = threading.Thread(target=lambda: outcome.update(report=batch.grade(
            A.name, klass, out, profile_name="quick", cluster=str(cluster.credentials))))
        thread.start()
        deadline = time.monotonic() + 300
        with cluster.client() as client:
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
        again = batch.grade(A.name, klass, out, profile_name="quick", cluster=str(cluster.credentials))
        assert sorted(again.graded) == sorted(lost)
        assert records(out) == pool_results[1]
    finally:
        stop(workers)
        cluster.close()


def test_a_client_without_the_batch_credentials_cannot_use_the_scheduler(scheduler, tmp_path):
    """The scheduler accepts only clients holding the batch's certificates: no other user can run code on the workers."""
    from distributed import Client, Security

    from autograder.serve import read_credentials

    plain = scheduler.address.replace("tls://", "tcp://")
    for address, security in [(scheduler.address, None), (scheduler.address, Security.temporary()), (plain, None)]:
        with pytest.raises((OSError, TypeError, ValueError)):  # no connection, so no task can be submitted
            Client(address, security=security, timeout=3)
    address, security = read_credentials(scheduler.credentials)  # the grader's own file: connects
    with Client(address, security=security, timeout=30) as client:
        assert client.run_on_scheduler(os.getpid) > 0
    # The kit refuses an unencrypted scheduler unless told, and a credentials file others can read.
    with pytest.raises(ValueError, match="an unencrypted scheduler.*--insecure connects anyway"):
        batch.grade(A.name, tmp_path, tmp_path / "out", profile_name="quick", cluster="tcp://127.0.0.1:8786")
    scheduler.credentials.chmod(0o644)
    with pytest.raises(ValueError, match="the credentials file is readable by others"):
        read_credentials(scheduler.credentials)


def graded_students(out: Path) -> set[str]:
    return {p.parent.parent.name for p in out.glob(f"*/{A.name}/{RECORD_FILE}")}


@pytest.mark.slow
def test_a_killed_worker_and_a_stranger_joining_mid_batch_cost_no_result(klass, pool_results, scheduler, tmp_path):
    """Mid-batch, one of two workers is killed (its nanny starts it again) and a worker from a kit with other course
    facts joins: nothing is lost, the stranger is refused and named, and nothing it could grade is kept."""
    workers = [start_worker(scheduler, ROOT) for _ in range(2)]
    stranger = None
    log = io.StringIO()
    out = tmp_path / "out"
    try:
        wait_for_workers(scheduler, 2)
        outcome = {}
        thread = threading.Thread(target=in_thread(outcome, lambda: batch.grade(
            A.name, klass, out, profile_name="quick", cluster=str(scheduler.credentials), log=log)))
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(out.glob(f"*/{A.name}/{RECORD_FILE}")):
            time.sleep(0.05)
        with scheduler.client() as client:
            pids = client.run(os.getpid)
            os.kill(sorted(pids.values())[0], signal.SIGKILL)  # one Dask worker process, mid-batch
            stranger = start_worker(scheduler, other_course(tmp_path, "\nLIMITS = Limits(**{**LIMITS.__dict__, "
                                                                      "'max_submission_mb': LIMITS.max_submission_mb + 1})\n"))
        thread.join(timeout=600)
    finally:
        stop(workers + ([stranger] if stranger else []))
    assert not thread.is_alive()
    assert "error" not in outcome, f"{outcome.get('error')}\n{log.getvalue()}"
    text = log.getvalue()
    refused = re.findall(r"REFUSED worker (tls://\S+)", text)
    assert len(refused) == 1 and "grades mnist_dense by other course facts" in text, (
        f"the stranger should have joined while the batch ran:\n{text}")
    report = outcome["report"]
    graders = {r.extra["grader"]["worker"] for r in report.results}
    assert refused[0] not in graders and report.workers == len(graders) >= 1  # the workers that graded
    assert len(list(out.glob(f"*/{A.name}/{RECORD_FILE}"))) == 8
    assert {r.student: comparable(r) for r in report.results} == pool_results[1] == records(out)


@pytest.mark.slow
def test_every_worker_gone_stops_the_batch_with_a_clear_message(klass, pool_results, scheduler, tmp_path, monkeypatch):
    """The only worker is killed mid-batch: the grader says so at once, waits its bounded time, stops with an error;
    what was graded is kept, and the next run grades only the rest."""
    from autograder import cluster

    monkeypatch.setattr(cluster, "WAIT_FOR_WORKERS_S", 3)
    log = io.StringIO()
    out = tmp_path / "out"
    worker = start_worker(scheduler, ROOT)
    try:
        wait_for_workers(scheduler, 1)
        outcome = {}

        def grade():
            try:
                batch.grade(A.name, klass, out, profile_name="quick", cluster=str(scheduler.credentials), log=log)
            except RuntimeError as exc:
                outcome["error"] = str(exc)

        thread = threading.Thread(target=grade)
        thread.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not graded_students(out):
            time.sleep(0.05)
        stop([worker])  # the worker and its nanny: the batch system's job cancelled
        thread.join(timeout=120)
    finally:
        stop([worker])
    assert not thread.is_alive(), "the grader should stop within its bounded wait"
    kept = graded_students(out)
    assert 1 <= len(kept) < 8
    assert "no verified worker is left on the Dask cluster" in log.getvalue()
    assert f"within 3 s of the last one leaving: {len(kept)} submission(s) graded and kept, {8 - len(kept)} not graded" \
        in outcome["error"]
    assert (out / "grades.csv").read_text().count("\n") == len(kept) + 1  # the kept results, listed
    worker = start_worker(scheduler, ROOT)
    try:
        wait_for_workers(scheduler, 1)
        again = batch.grade(A.name, klass, out, profile_name="quick", cluster=str(scheduler.credentials), log=log)
    finally:
        stop([worker])
    assert sorted(again.graded) == sorted(set(pool_results[1]) - kept)
    assert records(out) == pool_results[1]


def test_serve_refuses_a_cluster_open_to_the_network(tmp_path):
    """serve submits nothing for a cluster without TLS, or whose workers' HTTP servers listen on every interface."""
    from dask_jobqueue import SLURMCluster

    from autograder.serve import serve

    cluster = SLURMCluster(cores=1, memory="1GB", scheduler_options={"host": "127.0.0.1", "port": 0,
                                                                     "dashboard_address": "127.0.0.1:0"})
    with pytest.raises(SystemExit) as refused:
        serve(cluster, jobs=1, credentials=tmp_path / "grading-cluster.json")  # closes the cluster
    message = str(refused.value)
    assert message.startswith("serve: this cluster is open to the network, so nothing was submitted")
    assert "is not encrypted: create the cluster with security=True" in message
    assert '"--dashboard-address", "127.0.0.1:0"' in message
    assert not cluster.workers and not (tmp_path / "grading-cluster.json").exists()


def test_a_task_checks_its_worker_against_the_digests_it_carries(klass, tmp_path):
    """A task whose worker differs from what it carries grades nothing and says why; a matching one grades."""
    from autograder.cluster import DaskExecutor, expectations, grade_packed
    from autograder.grading import files

    profile = course_config.profile("quick")
    job = worker.Job(profile, False, None, klass, tmp_path, threads=1, assignments={A.name: A})
    expected = expectations(job, [A], {A.name: worker.task_for(A, profile, {}).fingerprint()}, strict=False)
    tampered = {**expected, "config": {A.name: "0" * 16}, "id": "another-batch"}
    packed = files.pack(klass / "s0" / A.name, course_config.LIMITS.max_submission_mb)
    executor = DaskExecutor("local:1")
    try:
        refused = executor.client.submit(grade_packed, A.name, "s0", "fp", packed, job, tampered).result()
        graded = executor.client.submit(grade_packed, A.name, "s0", "fp", packed, job, expected).result()
    finally:
        executor.close()
    assert "result" not in refused and refused["grader"]["verified"] is None
    assert len(refused["refused"]) == 1 and "grades mnist_dense by other course facts" in refused["refused"][0]
    assert graded["grader"]["verified"] == expected["id"] and graded["result"]["student"] == "s0"
    assert graded["result"]["extra"]["grader"]["worker"] == graded["grader"]["worker"]
