"""The security boundary: what a sandboxed child can and cannot do, for every backend that works here."""

from __future__ import annotations

import json
import os
import socket
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import course_config
from autograder import sandbox
from autograder.course_data import mnist_candidates
from autograder.datasets import tasks
from autograder.sandbox import cgroups
from tests.helpers import assert_given_back, grader_footprint

ISOLATING = [b for b in ("bwrap", "unshare") if b in sandbox.available_backends()]


def test_an_isolating_backend_works_here():
    # The grader must not silently fall back to "none" on the machines this kit supports.
    assert ISOLATING, "neither bubblewrap nor unshare works; see README (sandbox)"
    assert sandbox.default_backend() in ISOLATING


def run_script(tmp_path: Path, backend: str, code: str, *, data_dir=None, time_limit_s=60, memory_limit_mb=1024):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "probe.py").write_text(textwrap.dedent(code))
    return sandbox.run_job(
        [sys.executable, "-I", f"{sandbox.WORK}/probe.py"],
        work,
        time_limit_s=time_limit_s,
        memory_limit_mb=memory_limit_mb,
        data_dir=data_dir,
        backend=backend,
    )


@pytest.fixture(scope="module")
def grader_paths(tmp_path_factory):
    """Every path where the grader keeps test labels or other students' work."""
    task = tasks.MnistTask()
    out = tmp_path_factory.mktemp("out")
    submitted = tmp_path_factory.mktemp("submitted")
    (submitted / "bob" / "mnist_dense").mkdir(parents=True)
    (submitted / "bob" / "mnist_dense" / "secret.txt").write_text("bob's work")
    paths = [str(p) for _, p in mnist_candidates()]
    paths += [str(Path(p).parent) for p in paths]
    paths += [str(out), str(submitted), str(submitted / "bob" / "mnist_dense" / "secret.txt"),
              str(course_config.COURSE_DIR), str(course_config.COURSE_DIR / "course_config.py"),
              str(Path.home()), "/etc/shadow"]
    yield task, paths
    task.close()


@pytest.mark.parametrize("backend", ISOLATING)
def test_child_cannot_read_labels_or_other_files(tmp_path, backend, grader_paths):
    task, paths = grader_paths
    result = run_script(tmp_path, backend, f"""
        import json, os
        paths = {paths!r}
        readable = {{}}
        for p in paths:
            try:
                if os.path.isdir(p):
                    readable[p] = sorted(os.listdir(p))
                else:
                    open(p, "rb").read(1)
                    readable[p] = "file"
            except OSError:
                pass
        # The data a re-executed notebook gets has no test labels.
        import numpy as np
        with np.load("/data/mnist.npz") as f:
            keys = sorted(f.files)
        print(json.dumps({{"readable": readable, "data_keys": keys, "uid": os.getuid(), "cwd": os.getcwd()}}))
    """, data_dir=task.sandbox_data_dir())
    assert result.ok, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    # A folder on the way to the Python installation exists as a bare mount point: it may list the
    # next path component and nothing else.
    on_python_path = {part for root in sandbox.backends.readonly_roots() for part in Path(root).parts}
    leaks = {p: v for p, v in seen["readable"].items() if v == "file" or set(v) - on_python_path}
    assert leaks == {}, f"the sandboxed child could read {leaks}"
    assert seen["data_keys"] == ["x_test", "x_train", "y_train"]
    assert seen["uid"] != 0
    assert seen["cwd"] == sandbox.WORK


@pytest.mark.parametrize("backend", ISOLATING)
def test_child_has_no_network(tmp_path, backend):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(10)

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        # Sanity: the listener is reachable from an unsandboxed process.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        t.join()
        assert accepted, "listener did not accept the unsandboxed connection"
        result = run_script(tmp_path, backend, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5)
                print("CONNECTED")
            except OSError as e:
                print("refused", type(e).__name__)
            print("interfaces", sorted(name for _, name in socket.if_nameindex()))
        """)
    finally:
        server.close()
    assert result.ok, result.stderr
    assert "CONNECTED" not in result.stdout
    assert "interfaces ['lo']" in result.stdout


def run_shell(tmp_path: Path, backend: str, script: str, **limits):
    """Run a /bin/sh script in the sandbox: works on every backend, also as uid 65534 without namespaces."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return sandbox.run_job(["/bin/sh", "-c", script], work, backend=backend,
                           **{"time_limit_s": 60, "memory_limit_mb": 1024, **limits})


@pytest.mark.parametrize("backend", sandbox.available_backends())
def test_time_limit_kills_the_child(tmp_path, backend):
    result = run_shell(tmp_path, backend, "while true; do sleep 1; done", time_limit_s=3)
    assert result.timed_out and not result.ok
    assert "time limit of 3 s exceeded" in result.problem()
    assert result.seconds < 30


@pytest.mark.parametrize("backend", sandbox.available_backends())
def test_cpu_time_of_the_whole_job_is_counted(tmp_path, backend):
    # A fixed amount of work in two processes (the shell and a child it starts in the background): its CPU
    # time, measured here outside the sandbox, is what the job must report, however busy the machine is.
    # Inside bubblewrap's PID namespace nothing reaches the grader's getrusage, so the control group counts it.
    import resource
    import subprocess

    work = "i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done"
    script = f"( {work} ) & {work}; wait"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["/bin/sh", "-c", script], check=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reference = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result = run_shell(tmp_path, backend, script)
    assert result.ok, result.problem()
    assert result.cpu_seconds > 0.75 * reference, (
        f"CPU time {result.cpu_seconds:.2f} s for work that takes {reference:.2f} CPU s in two processes")
    assert result.cpu_seconds < 60


@pytest.mark.parametrize("backend", sandbox.available_backends())
def test_memory_limit_kills_the_child(tmp_path, backend):
    # The shell holds 600 MB in a variable, 300 MB over the limit.
    result = run_shell(tmp_path, backend, 'a=$(head -c 600000000 /dev/zero | tr "\\0" a); echo survived',
                       memory_limit_mb=300)
    assert result.memory_exceeded and not result.ok
    assert "memory limit of 300 MB exceeded" in result.problem()
    assert "survived" not in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the grader drops privileges only when it runs as root")
def test_without_namespaces_student_code_runs_unprivileged_and_cannot_read_root_files(tmp_path):
    """Fail closed where no namespace sandbox works (e.g. Gradescope's container): uid 65534 and permissions."""
    secret_dir = tmp_path / "data"
    secret_dir.mkdir(mode=0o700)
    (secret_dir / "labels.npy").write_text("7 2 1 0 4")
    (secret_dir / "labels.npy").chmod(0o600)
    result = run_shell(tmp_path, "none", f"id -u; cat {secret_dir}/labels.npy || echo DENIED; "
                                         f"touch {tmp_path}/escaped || echo NOWRITE; echo ok > out.txt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == str(sandbox.NOBODY)
    assert "DENIED" in result.stdout and "7 2 1" not in result.stdout and "NOWRITE" in result.stdout
    assert (tmp_path / "work" / "out.txt").read_text() == "ok\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="the grader drops privileges only when it runs as root")
def test_without_namespaces_a_program_nobody_can_reach_is_refused_not_run_as_root(tmp_path):
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    program = hidden / "prog"
    program.write_text(f"#!/bin/sh\ntouch {tmp_path}/ran\n")
    program.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    result = sandbox.run_job([str(program)], work, time_limit_s=10, memory_limit_mb=100, backend="none")
    assert result.returncode == 126 and not result.ok
    blocked = result.problem().split("cannot reach ")[1].split(";")[0]
    assert str(hidden).startswith(blocked) and blocked != "/"
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("backend", ISOLATING)
def test_child_writes_only_its_scratch_folder(tmp_path, backend):
    result = run_script(tmp_path, backend, """
        open("/submission/out.txt", "w").write("ok")
        for p in ["/usr/evil", "/etc/evil", "/evil", "/submission/../evil"]:
            try:
                open(p, "w").write("x")
                print("WROTE", p)
            except OSError:
                pass
    """)
    assert result.ok, result.stderr
    assert (tmp_path / "work" / "out.txt").read_text() == "ok"
    assert "WROTE" not in result.stdout


def test_predict_job_uses_safe_mode(tmp_path, models_dir):
    """The child refuses a Lambda model even if the parent's config check were bypassed."""
    work = tmp_path / "w"
    work.mkdir()
    (work / "model.keras").write_bytes((models_dir / "lambda.keras").read_bytes())
    np.save(work / "inputs.npy", np.zeros((2, 28, 28), np.float32))
    sandbox.install_job(work)
    result = sandbox.run_job(
        sandbox.python_argv("predict", "keras", f"{sandbox.WORK}/model.keras", f"{sandbox.WORK}/inputs.npy", f"{sandbox.WORK}/p.npy"),
        work, time_limit_s=120, memory_limit_mb=3000,
    )
    assert not result.ok and result.returncode == 3  # the job says why in its report, not in a traceback
    problem = json.loads((work / "p.json").read_text())["problem"]
    assert "(carries Python code)" in problem and "arbitrary code execution" in problem, problem
    assert not (work / "p.npy").exists()


# ------------------------------------------------------------------------------------------------
# Limits on every resource, enforced by the kernel where this machine allows it
# ------------------------------------------------------------------------------------------------
KERNEL = {e.resource: e.kernel for e in sandbox.enforcement()}


def run_limited(backend: str, script: str, **limits) -> sandbox.SandboxResult:
    """A /bin/sh script in a fresh scratch folder with small limits; the machine must recover after it."""
    limits = {"time_limit_s": 60, "memory_limit_mb": 300, "disk_limit_mb": 200, "tmp_limit_mb": 100,
              "max_processes": 64, **limits}
    before = grader_footprint()
    with sandbox.scratch(limits["disk_limit_mb"]) as work:
        result = sandbox.run_job(["/bin/sh", "-c", script], work, backend=backend, **limits)
    assert_given_back(before, grader_footprint())
    return result


def test_doctor_reports_how_each_limit_is_enforced():
    rows = sandbox.enforcement()
    assert {"memory", "/tmp", "disk", "processes", "cpu time", "wall time", "processes left running",
            "output"} <= {e.resource for e in rows}
    # strict mode lists exactly what the kernel does not enforce
    assert len(sandbox.strict_problems()) == sum(not e.kernel for e in rows)


@pytest.mark.skipif(not cgroups.support().version, reason=f"no usable cgroups here: {cgroups.support().reason}")
def test_this_machine_enforces_memory_and_processes_in_the_kernel():
    # Where cgroups can be used (as on the CI machines: v1 memory and pids, writable for root), they are.
    assert KERNEL["memory"] == bool(cgroups.support().memory)
    assert KERNEL["processes"] == bool(cgroups.support().pids)


@pytest.mark.parametrize("backend", ISOLATING)
def test_files_in_ram_count_toward_the_memory_limit(backend):
    # 500 MB written to /tmp in 10 MB pieces: a tmpfs, so it is memory. /tmp's own limit is set above it.
    result = run_limited(backend, "for i in $(seq 50); do head -c 10000000 /dev/zero > /tmp/f$i || exit 3; done; "
                                  "echo survived", tmp_limit_mb=600)
    assert not result.ok and "survived" not in result.stdout
    if KERNEL["memory"]:
        assert result.memory_exceeded
        assert "memory limit of 300 MB exceeded" in result.problem()
    else:  # the kernel refuses at /tmp's own size limit instead
        assert result.returncode == 3


@pytest.mark.parametrize("backend", ISOLATING)
def test_tmp_has_its_own_size_limit(backend):
    result = run_limited(backend, "for i in $(seq 30); do head -c 10000000 /dev/zero > /tmp/f$i || exit 3; done; "
                                  "echo survived", memory_limit_mb=1024, tmp_limit_mb=100)
    assert result.returncode == 3 and "No space left on device" in result.stderr
    assert "/tmp is limited to 100 MB" in result.problem()


@pytest.mark.parametrize("backend", ISOLATING)
def test_disk_limit_stops_many_small_files(backend):
    # 300 files of 1 MB, each far under the per-file limit: 300 MB against a 200 MB folder.
    result = run_limited(backend, "i=0; while [ $i -lt 300 ]; do head -c 1000000 /dev/zero > f$i || exit 3; "
                                  "i=$((i+1)); done; echo survived", memory_limit_mb=1024)
    assert result.disk_exceeded and not result.ok
    assert "disk limit of 200 MB exceeded" in result.problem()
    assert "survived" not in result.stdout
    assert result.disk_used_mb <= 200 + (0 if KERNEL["disk"] else 150)


@pytest.mark.parametrize("backend", ISOLATING)
def test_fork_bomb_is_refused_and_the_job_ends(backend):
    if not KERNEL["processes"]:
        pytest.skip("the process limit is not enforced by the kernel here (doctor says why)")
    result = run_limited(backend, "bomb() { bomb | bomb & }; bomb; sleep 2; echo parent-alive", time_limit_s=30)
    assert result.processes_refused > 0
    assert "process limit" in " ".join(result.limits_hit())
    assert result.peak_processes <= 64


@pytest.mark.parametrize("backend", ISOLATING)
def test_output_flood_keeps_only_the_tail(backend):
    result = run_limited(backend, "head -c 300000000 /dev/zero | tr '\\0' x; echo; echo the-end")
    assert result.ok
    assert result.output_mb >= 286  # 300,000,000 bytes were printed ...
    assert len(result.stdout) <= 64 * 1024 and result.stdout.rstrip().endswith("the-end")  # ... and 64 KB kept


@pytest.mark.parametrize("backend", ISOLATING)
def test_no_process_outlives_its_job(backend, tmp_path):
    # A daemon that leaves the job's process group and session, then writes after the job is over.
    result = run_limited(backend, "setsid sh -c 'sleep 2; echo late > late.txt; sleep 100' & echo started")
    assert result.ok and "started" in result.stdout
    import subprocess
    import time

    time.sleep(3)
    leftover = subprocess.run(["pgrep", "-f", "sleep 100"], capture_output=True, text=True).stdout.split()
    assert leftover == [], f"processes left running after the job: {leftover}"


@pytest.mark.parametrize("backend", ISOLATING)
def test_without_cgroups_memory_and_disk_are_polled(backend, tmp_path, monkeypatch):
    # A machine without usable cgroups and without mount rights: the grader watches instead.
    monkeypatch.setattr(cgroups, "support", lambda: cgroups.Support(0, None, None, "no cgroup file system"))
    work = tmp_path / "plain"
    work.mkdir()
    memory = sandbox.run_job(["/bin/sh", "-c", 'a=$(head -c 600000000 /dev/zero | tr "\\0" a); echo survived'],
                             work, backend=backend, time_limit_s=60, memory_limit_mb=300)
    assert memory.memory_exceeded and "survived" not in memory.stdout
    disk = sandbox.run_job(["/bin/sh", "-c", "i=0; while [ $i -lt 400 ]; do head -c 1000000 /dev/zero > f$i; "
                                             "i=$((i+1)); sleep 0.01; done; echo survived"],
                           work, backend=backend, time_limit_s=60, memory_limit_mb=1024, disk_limit_mb=100)
    assert disk.disk_exceeded and "survived" not in disk.stdout
    assert "disk limit of 100 MB exceeded" in disk.problem()
