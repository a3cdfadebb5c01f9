"""Running one job in the sandbox (:func:`run_job`), and putting the child's files in its folder."""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from autograder.course_data import DATA_DIR_ENV
from autograder.sandbox import cgroups, gpus
from autograder.sandbox.backends import default_backend, give_to_nobody, unreachable_for_nobody, wrap
from autograder.sandbox.limits import DATA, NOBODY, THREAD_VARS, WORK, base_env, child_setup, tree_rss_mb
from autograder.sandbox.result import SandboxResult
from autograder.sandbox.scratch import folder_mb

JOB_FILE = "_autograder_job.py"  # child.py, as the child runs it
ENGINE_PACKAGE = "_autograder_keras_numpy"  # the package autograder/keras_numpy, importable by the job
CHILD = Path(__file__).with_name("child.py")
ENGINE = Path(__file__).parent.parent / "keras_numpy"
MODEL_LOADER = Path(__file__).parent.parent / "model_files" / "load.py"
MODEL_LOADER_FILE = "_autograder_model_load.py"  # how the job imports it


class _Tail(threading.Thread):
    """Reads a pipe to its end, keeping only the last ``limit`` bytes and counting all of them."""

    def __init__(self, stream, limit: int = 64 * 1024):
        super().__init__(daemon=True)
        self.stream, self.limit = stream, limit
        self.buffer = bytearray()
        self.total = 0

    def run(self):
        try:
            while chunk := self.stream.read1(1 << 16):
                self.total += len(chunk)
                self.buffer += chunk
                if len(self.buffer) > 2 * self.limit:
                    del self.buffer[:-self.limit]
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        return bytes(self.buffer[-self.limit:]).decode("utf-8", errors="replace")


def run_job(
    argv: list[str],
    workdir: Path,
    *,
    time_limit_s: float,
    memory_limit_mb: int,
    data_dir: Path | None = None,
    max_file_mb: int = 512,
    disk_limit_mb: int = 1024,
    tmp_limit_mb: int = 512,
    max_processes: int = 512,
    backend: str | None = None,
    extra_env: dict[str, str] | None = None,
    threads: int = 0,
    devices: dict[str, str] | None = None,
) -> SandboxResult:
    """Run ``argv`` (paths as the child sees them) in the sandbox with ``workdir`` as ``/submission``.

    ``data_dir``, if given, is visible read-only as ``/data``. Nothing else of this machine's files
    is visible beyond the system and the Python installation (backend ``none`` excepted: there, a
    grader running as root runs the child as uid 65534, so file permissions protect its files).
    ``threads`` > 0 caps the numerical libraries' thread pools (several jobs share the cores).
    ``devices`` (``{path in the child: device node here}``, from :func:`gpus.gpu_devices`) gives the child
    GPUs; without them, no framework in the child finds a GPU (:mod:`autograder.sandbox.gpus`).
    Limits: see :func:`enforcement` for how each is enforced here; ``workdir`` should come from
    :func:`scratch` so that its size limit is the kernel's.
    """
    backend = backend or default_backend()
    workdir = Path(workdir).resolve()
    limits = {"time_limit_s": time_limit_s, "memory_limit_mb": memory_limit_mb, "disk_limit_mb": disk_limit_mb,
              "tmp_limit_mb": tmp_limit_mb, "max_processes": max_processes}
    if backend == "none":  # no namespace: map the fixed child paths onto the real folders
        argv = [a.replace(WORK, str(workdir)).replace(DATA, str(data_dir or workdir)) for a in argv]
    full_argv, wrap_env = wrap(backend, workdir, data_dir, argv, tmp_limit_mb, devices)
    env = {**base_env(), **gpus.child_env(devices), **wrap_env, **(extra_env or {})}
    if threads > 0:
        env.update({key: str(threads) for key in THREAD_VARS})
    drop = False
    if backend == "none":
        env.update({"HOME": str(workdir), DATA_DIR_ENV: str(data_dir or workdir), "TMPDIR": str(workdir)})
        for key in ("MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR", "KERAS_HOME"):
            env[key] = str(workdir / ".cache" / key.lower())
        if os.geteuid() == 0:
            drop = True
            unreachable = unreachable_for_nobody(argv[0])
            if unreachable:  # fail closed: never run student code as root
                return SandboxResult(
                    returncode=126, seconds=0.0, backend=backend, limits=limits,
                    stderr=f"sandbox: refusing to run as root, and uid {NOBODY} cannot reach {unreachable}; install "
                           "the kit's Python where an unprivileged user can run it (e.g. a venv under /opt), or "
                           "install bubblewrap",
                )
            give_to_nobody(workdir, data_dir)
    group = None
    if cgroups.support().version:
        try:
            group = cgroups.JobGroup(memory_limit_mb, max_processes)
        except OSError:
            group = None
    procs_files = group.procs_files() if group else []
    nproc = max_processes if drop and not (group and "pids" in group.enforces) else 0
    kernel_memory = group is not None and "memory" in group.enforces
    kernel_disk = os.path.ismount(workdir)
    cpu_seconds = int(time_limit_s * (os.cpu_count() or 1)) + 60
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, started_at = time.monotonic(), time.time()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
            full_argv,
            cwd=str(workdir) if backend == "none" else "/",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: child_setup(max_file_mb, cpu_seconds, drop, procs_files, nproc),
        )
    except BaseException:
        if group:
            group.close()
        raise
    tails = [_Tail(proc.stdout), _Tail(proc.stderr)]
    for t in tails:
        t.start()
    peak = [0.0]
    memory_over, disk_over = threading.Event(), threading.Event()
    stop = threading.Event()

    def watch():
        rounds = 0
        while not stop.wait(0.25):
            rounds += 1
            if kernel_memory:
                if group.oom_kills():  # the kernel killed a process at the limit: stop the job
                    memory_over.set()
                    _kill(proc)
                    return
            else:
                used = tree_rss_mb(proc.pid)
                peak[0] = max(peak[0], used)
                if used > memory_limit_mb:
                    memory_over.set()
                    _kill(proc)
                    return
            if not kernel_disk and rounds % 2 == 0 and folder_mb(workdir) > disk_limit_mb:
                disk_over.set()
                _kill(proc)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    timed_out = False
    try:
        _wait(proc, time_limit_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        proc.wait()
    finally:
        stop.set()
        watcher.join()
    seconds = time.monotonic() - start
    usage = {}
    if group is not None:
        usage = group.usage()
        group.close()  # kills whatever is left, escaped process groups included
    for t in tails:
        t.join(timeout=5)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    disk_used = folder_mb(workdir)
    if kernel_disk:  # a full scratch file system: the kernel refused the write that would pass the limit
        st = os.statvfs(workdir)
        if st.f_bavail * st.f_frsize < 2**20:
            disk_over.set()
    return SandboxResult(
        returncode=proc.returncode,
        seconds=seconds,
        timed_out=timed_out,
        memory_exceeded=memory_over.is_set() or usage.get("oom_kills", 0) > 0,
        peak_memory_mb=usage.get("peak_memory_mb", peak[0]),
        stdout=tails[0].text(),
        stderr=tails[1].text(),
        backend=backend,
        limits=limits,
        disk_exceeded=disk_over.is_set(),
        disk_used_mb=disk_used,
        processes_refused=usage.get("refused_forks", 0),
        peak_processes=usage.get("peak_processes", 0),
        output_mb=(tails[0].total + tails[1].total) / 2**20,
        # The job's control group counts every process in it; getrusage only the ones their parents reaped
        # (none inside bubblewrap's PID namespace), so it is the fallback where no group counts CPU time.
        cpu_seconds=usage.get("cpu_seconds", (cpu_after.ru_utime + cpu_after.ru_stime)
                              - (cpu_before.ru_utime + cpu_before.ru_stime)),
        started_at=started_at,
    )


def _wait(proc: subprocess.Popen, timeout: float) -> None:
    """``proc.wait(timeout)``, woken the moment the child exits: Popen's own wait with a timeout polls,
    sleeping up to 50 ms between looks (25 ms lost per job on average, once per model of every submission)."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux 5.3+, or the child is already reaped
        proc.wait(timeout=timeout)
        return
    try:
        poll = select.poll()
        poll.register(fd, select.POLLIN)  # readable once the process has exited
        if not poll.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    proc.wait()


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def install_job(workdir: Path) -> None:
    """Copy the child's jobs (``child.py``) and the NumPy Keras engine package into ``workdir``."""
    shutil.copyfile(CHILD, Path(workdir) / JOB_FILE)
    shutil.copyfile(MODEL_LOADER, Path(workdir) / MODEL_LOADER_FILE)
    copy_engine(Path(workdir) / ENGINE_PACKAGE)


def copy_engine(dest: Path) -> None:
    """Copy the NumPy Keras engine package (its ``.py`` files only) to ``dest``, a new folder."""
    for path in sorted(ENGINE.rglob("*.py")):
        target = dest / path.relative_to(ENGINE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def python_argv(job: str, *args: str) -> list[str]:
    """The child's command line for one of ``child.py``'s jobs (run with isolated Python)."""
    return [sys.executable, "-I", f"{WORK}/{JOB_FILE}", job, *args]
