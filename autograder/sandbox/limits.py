"""The child process as it starts: the paths it sees, its whole environment, its resource limits, what it
does between fork and exec (join its control groups, drop privileges), and the memory of its process tree."""

from __future__ import annotations

import os
import signal
import sys

from autograder.course_data import DATA_DIR_ENV

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")
WORK = "/submission"  # the scratch folder as the child sees it
DATA = "/data"  # the read-only data folder as the child sees it (its COURSE_DATA_DIR)
NOBODY = 65534  # the unprivileged user the child runs as


def base_env() -> dict[str, str]:
    """The whole environment of the child: nothing of the grader's is passed on."""
    env = {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp/home",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": "/tmp/matplotlib",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "JUPYTER_DATA_DIR": "/tmp/jupyter-data",
        "IPYTHONDIR": "/tmp/ipython",
        "KERAS_HOME": "/tmp/home/.keras",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        DATA_DIR_ENV: DATA,
    }
    if "KERAS_BACKEND" in os.environ:
        env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
    return env


# ------------------------------------------------------------------------------------------------
# Resource limits
# ------------------------------------------------------------------------------------------------
def _set_rlimits(max_file_mb: int, cpu_seconds: int, max_processes: int = 0) -> None:  # in the child, before exec
    import resource

    def cap(which, value):
        try:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    cap(resource.RLIMIT_CORE, 0)
    cap(resource.RLIMIT_FSIZE, max_file_mb * 2**20)
    cap(resource.RLIMIT_CPU, cpu_seconds)
    cap(resource.RLIMIT_NOFILE, 4096)
    if max_processes:
        cap(resource.RLIMIT_NPROC, max_processes)


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (a grader killed with -9 leaves nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def child_setup(max_file_mb: int, cpu_seconds: int, drop_to_nobody: bool, cgroup_procs: list[str],
                 nproc: int) -> None:  # in the child, between fork and exec
    die_with_parent()
    for path in cgroup_procs:  # join the job's control groups before anything else runs; fail closed
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        except OSError:
            os._exit(125)
    _set_rlimits(max_file_mb, cpu_seconds, nproc)
    if drop_to_nobody:
        # No namespace isolates this child: as root, run it as an unprivileged user, so that file
        # permissions keep the grader's files (test labels included) out of its reach. Fail closed.
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        if os.getuid() != NOBODY or os.geteuid() != NOBODY:
            os._exit(126)


def tree_rss_mb(root_pid: int) -> float:
    """Resident memory of ``root_pid`` and all its descendants, in MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, pages = int(fields[1]), int(fields[21])
        except (OSError, ValueError, IndexError):
            continue
        pid = int(entry)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = pages * page
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / 2**20
