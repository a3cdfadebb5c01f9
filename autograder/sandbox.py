"""The security boundary: student notebooks and student model files run only here, in a child.

Everything that touches student code goes through :func:`run_job`. The child process

* sees a minimal filesystem: the system and Python installation read-only, one scratch folder
  (``/submission``, read-write), an optional read-only data folder (``/data``) and a private
  ``/tmp``. Nothing else: not the course repository, not the grader's data files, not other
  students' submissions, not the output folder;
* has no network (its own empty network namespace) and runs as an unprivileged user;
* gets wall-time, memory (resident set of the whole process tree), file-size and core limits.

The trusted parent never unpickles anything it gets back: it reads ``.npy`` files with
``allow_pickle=False`` and JSON.

Isolation backends, best first: ``bwrap`` (bubblewrap), ``unshare`` (util-linux, with a
chroot built from bind mounts) and ``none`` (resource limits and a scratch folder only; used
only where neither works, with a warning in every result). ``AUTOGRADER_SANDBOX`` picks one.

This file also holds the jobs that run *inside* the sandbox (``predict`` and ``execute``): the
parent copies it into the scratch folder and runs it with the venv's Python, so the child needs
nothing from the course repository.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

SANDBOX_ENV = "AUTOGRADER_SANDBOX"
BACKENDS = ("bwrap", "unshare", "none")
WORK = "/submission"  # the scratch folder as the child sees it
DATA = "/data"  # the read-only data folder as the child sees it
JOB_FILE = "_autograder_job.py"
ENGINE_PACKAGE = "_autograder_keras_numpy"  # the package autograder/keras_numpy, importable by the job
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
               "TF_NUM_INTEROP_THREADS")
NOBODY = 65534
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "passwd", "group", "nsswitch.conf",
    "localtime", "ssl", "ca-certificates", "fonts", "mime.types", "matplotlibrc",
)


@dataclass
class SandboxResult:
    """How a sandboxed job ended, and what it used."""

    returncode: int | None
    seconds: float
    timed_out: bool = False
    memory_exceeded: bool = False
    peak_memory_mb: float = 0.0
    stdout: str = ""
    stderr: str = ""
    backend: str = ""
    limits: dict = field(default_factory=dict)
    disk_exceeded: bool = False
    disk_used_mb: float = 0.0
    processes_refused: int = 0  # forks the process limit refused
    peak_processes: int = 0
    output_mb: float = 0.0  # printed on stdout and stderr together (only the tails are kept)
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.memory_exceeded and not self.disk_exceeded

    def problem(self) -> str | None:
        """A one-line, student-facing reason the job failed (None if it succeeded)."""
        if self.memory_exceeded:
            return (f"memory limit of {self.limits.get('memory_limit_mb')} MB exceeded (files written to /tmp "
                    "and to the working folder live in memory and count too)")
        if self.timed_out:
            return f"time limit of {self.limits.get('time_limit_s')} s exceeded (stopped after {self.seconds:.0f} s)"
        if self.disk_exceeded:
            return (f"disk limit of {self.limits.get('disk_limit_mb')} MB exceeded (all files in the working "
                    "folder together)")
        if self.returncode != 0:
            tail = last_line(self.stderr) or last_line(self.stdout)
            if NO_SPACE in self.stderr[-4096:] or NO_SPACE in self.stdout[-4096:]:
                tail = (f"{tail} ({space_limits(self.limits.get('tmp_limit_mb'), self.limits.get('disk_limit_mb'))})"
                        if tail else space_limits(self.limits.get("tmp_limit_mb"), self.limits.get("disk_limit_mb")))
            if self.processes_refused:
                tail = (f"process limit of {self.limits.get('max_processes')} processes and threads reached"
                        + (f"; {tail}" if tail else ""))
            code = self.returncode or 0
            if code < 0 or code > 128:  # a signal: -N from Popen, 128+N from a shell or bubblewrap's init
                name = signal.Signals(abs(code) % 128).name if 0 < abs(code) % 128 < 65 else f"signal {abs(code) % 128}"
                return f"was killed by {name} (exit code {code}; did the code kill its own processes?)" + (
                    f": {tail}" if tail else "")
            return f"exited with code {code}" + (f": {tail}" if tail else "")
        return None

    def usage(self) -> dict:
        """What the job used, rounded for a results file: wall and CPU seconds, peak memory, disk, output."""
        return {
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            "peak_memory_mb": round(self.peak_memory_mb),
            "disk_used_mb": round(self.disk_used_mb, 1),
            "output_mb": round(self.output_mb, 1),
            "sandbox": self.backend,
        }

    def limits_hit(self) -> list[str]:
        """The names of the limits this job ran into (for the batch summary)."""
        hit = [("time limit", self.timed_out), ("memory limit", self.memory_exceeded),
               ("disk limit", self.disk_exceeded), ("process limit", self.processes_refused > 0)]
        return [name for name, happened in hit if happened]


NO_SPACE = "No space left on device"


def space_limits(tmp_mb, disk_mb) -> str:
    """What a student reads when a write failed for lack of space."""
    return f"no space left: /tmp is limited to {tmp_mb} MB and the working folder to {disk_mb} MB"


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ------------------------------------------------------------------------------------------------
# Backends
# ------------------------------------------------------------------------------------------------
def _python_roots() -> list[str]:
    """Read-only folders the child needs to run this Python and its packages."""
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix), os.path.realpath(sys.exec_prefix)}
    exe = os.path.realpath(sys.executable)
    roots.add(os.path.dirname(os.path.dirname(exe)))
    # A venv reached through a symbolic link (e.g. ``.venv -> /elsewhere/venv``): the link too, so that
    # the path of sys.executable exists in the child (the mount table makes it a link there as well).
    roots.add(os.path.abspath(sys.prefix))
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))))
    return sorted(r for r in roots if r and r != "/")


def _readonly_roots() -> list[str]:
    paths = [d for d in _SYSTEM_DIRS if os.path.exists(d)]
    paths += [f"/etc/{name}" for name in _ETC_FILES if os.path.exists(f"/etc/{name}")]
    for root in _python_roots():
        if not any(root == p or root.startswith(p + "/") for p in paths):
            paths.append(root)
    return paths


def _bwrap_argv(workdir: Path, data_dir: Path | None, inner: list[str], tmp_mb: int) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
    for path in _readonly_roots():
        if os.path.islink(path):  # e.g. /lib -> usr/lib on merged-/usr systems
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += ["--ro-bind", path, path]
    argv += ["--bind", str(workdir), WORK]
    if data_dir is not None:
        argv += ["--ro-bind", str(data_dir), DATA]
    argv += ["--remount-ro", "/", "--chdir", WORK, "--"]
    return argv + inner


_UNSHARE_SCRIPT = r"""
set -e
root=$(mktemp -d /tmp/sandbox-root.XXXXXX)
mount -t tmpfs -o mode=755 sandbox "$root"
mkdir -p "$root/proc" "$root/dev" "$root/tmp" "$root$WORK"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o "mode=1777,size=${TMP_MB}m" tmp "$root/tmp"
for p in $RO_PATHS; do
  if [ -L "$p" ]; then mkdir -p "$root$(dirname "$p")"; ln -s "$(readlink "$p")" "$root$p"; continue; fi
  if [ -d "$p" ]; then mkdir -p "$root$p"; else mkdir -p "$root$(dirname "$p")"; touch "$root$p"; fi
  mount --rbind "$p" "$root$p"
  mount -o remount,bind,ro "$root$p" 2>/dev/null || true
done
mount --bind "$WORK_SRC" "$root$WORK"
if [ -n "$DATA_SRC" ]; then mkdir -p "$root$DATA"; mount --bind "$DATA_SRC" "$root$DATA"; mount -o remount,bind,ro "$root$DATA"; fi
mount -o remount,ro "$root"
cd "$root"
if [ "$(id -u)" = 0 ] && [ -z "$USERNS" ]; then
  exec "$CHROOT" --userspec=$NOBODY:$NOBODY "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$WORK" "$@"
fi
exec "$CHROOT" "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$WORK" "$@"
"""


def unreachable_for_nobody(program: str) -> str | None:
    """The first path on the way to ``program`` (an executable) that other users cannot use, or None."""
    path = Path(shutil.which(program) or program).absolute()
    for target in (path, path.resolve()):
        for folder in reversed(target.parents):
            if not folder.stat().st_mode & 0o001:
                return str(folder)
        if not os.stat(target).st_mode & 0o001:
            return str(target)
    return None


def _give_to_nobody(workdir: Path, data_dir: Path | None) -> None:
    """As root, the unshare backend runs the child as uid 65534: let it use its folders."""
    for dirpath, dirnames, filenames in os.walk(workdir):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.lchown(name, NOBODY, NOBODY)
    if data_dir is not None:
        for dirpath, _, filenames in os.walk(data_dir):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)


def _unshare_argv(workdir: Path, data_dir: Path | None, inner: list[str], tmp_mb: int) -> tuple[list[str], dict]:
    userns = os.geteuid() != 0
    if not userns:
        _give_to_nobody(workdir, data_dir)
    argv = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--propagation", "private"]
    if userns:
        argv.append("--map-root-user")
    argv += ["/bin/sh", "-c", _UNSHARE_SCRIPT, "sandbox"] + inner
    env = {
        "RO_PATHS": " ".join(_readonly_roots()),
        "WORK": WORK,
        "WORK_SRC": str(workdir),
        "DATA": DATA,
        "DATA_SRC": str(data_dir) if data_dir else "",
        "NOBODY": str(NOBODY),
        "TMP_MB": str(tmp_mb),
        "USERNS": "1" if userns else "",
        "CHROOT": shutil.which("chroot") or "chroot",
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    return argv, env


@lru_cache(maxsize=None)
def _backend_works(backend: str) -> bool:
    if backend == "none":
        return True
    exe = {"bwrap": "bwrap", "unshare": "unshare"}[backend]
    if shutil.which(exe) is None or shutil.which("chroot" if backend == "unshare" else exe) is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run  # noqa: S603 - fixed argv
        argv, extra = _wrap(backend, Path(tmp), None, [sys.executable, "-c", "import os; print(os.getcwd())"])
        try:
            res = probe(argv, env={**_base_env(), **extra}, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return res.returncode == 0 and res.stdout.strip() == WORK


def available_backends() -> list[str]:
    """The isolation backends that work on this machine, best first."""
    return [b for b in BACKENDS if _backend_works(b)]


def default_backend() -> str:
    """The backend to use: ``$AUTOGRADER_SANDBOX`` if set, else the best one that works."""
    wanted = os.environ.get(SANDBOX_ENV)
    if wanted:
        if wanted not in BACKENDS:
            raise ValueError(f"{SANDBOX_ENV}={wanted!r}; choose one of {', '.join(BACKENDS)}")
        if not _backend_works(wanted):
            raise RuntimeError(f"{SANDBOX_ENV}={wanted} does not work on this machine")
        return wanted
    backend = available_backends()[0]
    if backend == "none":
        warnings.warn(
            "no isolating sandbox works here (install bubblewrap, or allow unshare): student code runs "
            "with resource limits only and could read files this user can read",
            RuntimeWarning,
            stacklevel=2,
        )
    return backend


def _wrap(backend: str, workdir: Path, data_dir: Path | None, inner: list[str],
          tmp_mb: int = 64) -> tuple[list[str], dict]:
    if backend == "bwrap":
        return _bwrap_argv(workdir, data_dir, inner, tmp_mb), {}
    if backend == "unshare":
        return _unshare_argv(workdir, data_dir, inner, tmp_mb)
    return inner, {}


def _base_env() -> dict[str, str]:
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
        "COURSE_DATA_DIR": DATA,
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


def _child_setup(max_file_mb: int, cpu_seconds: int, drop_to_nobody: bool, cgroup_procs: list[str],
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


def _tree_rss_mb(root_pid: int) -> float:
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


# ------------------------------------------------------------------------------------------------
# The scratch folder: a size-limited file system of its own where the kernel allows one
# ------------------------------------------------------------------------------------------------
SCRATCH_PREFIX = "autograder-scratch-"
_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 2, 4, 2


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _mount_tmpfs(path: Path, size_mb: int) -> None:
    import ctypes

    options = f"size={size_mb}m,mode=0700".encode()
    if _libc().mount(b"tmpfs", str(path).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _unmount(path: Path) -> None:
    _libc().umount2(str(path).encode(), _MNT_DETACH)


@lru_cache(maxsize=None)
def scratch_problem() -> str:
    """"" if scratch folders can be size-limited file systems here, else why not."""
    if os.geteuid() != 0:
        return "the grader is not root, so it cannot mount a size-limited scratch file system"
    probe = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}probe-"))
    try:
        _mount_tmpfs(probe, 1)
        _unmount(probe)
        return ""
    except OSError as exc:
        return f"mounting a tmpfs failed ({exc.strerror})"
    finally:
        probe.rmdir()


def _remove_stale_scratch() -> None:
    """Unmount and remove scratch folders of graders that died (kill -9), freeing their memory."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    for line in lines:
        point = Path(line.split()[4])
        if not point.name.startswith(SCRATCH_PREFIX):
            continue
        owner = point.name[len(SCRATCH_PREFIX):].split("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not Path(f"/proc/{owner}").exists():
            _unmount(point)
            shutil.rmtree(point, ignore_errors=True)


@contextmanager
def scratch(disk_limit_mb: int) -> Iterator[Path]:
    """A fresh working folder for one submission or job, removed afterwards.

    Where the grader may mount (root), it is a tmpfs of ``disk_limit_mb``: the kernel refuses writes
    beyond it (``No space left on device``) and the pages count toward the writer's memory limit.
    Elsewhere it is a plain temporary folder, and :func:`run_job` polls its size instead.
    """
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    mounted = False
    if not scratch_problem():
        _remove_stale_scratch()
        try:
            _mount_tmpfs(path, disk_limit_mb)
            mounted = True
        except OSError:
            pass
    try:
        yield path
    finally:
        if mounted:
            _unmount(path)
        shutil.rmtree(path, ignore_errors=True)


def _folder_mb(path: Path) -> float:
    """Megabytes used by the files under ``path``: the file system's own count for a scratch mount."""
    if os.path.ismount(path):
        st = os.statvfs(path)
        return (st.f_blocks - st.f_bfree) * st.f_frsize / 2**20
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total / 2**20


# ------------------------------------------------------------------------------------------------
# How each limit is enforced here
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enforcement:
    resource: str
    kernel: bool  # enforced by the kernel (not by the grader watching)
    how: str


def enforcement(backend: str | None = None) -> list[Enforcement]:
    """For every limit, whether the kernel enforces it on this machine with ``backend``, and how."""
    from autograder import cgroups

    backend = backend or default_backend()
    cg = cgroups.support()
    rows = []
    if cg.memory:
        rows.append(Enforcement("memory", True, f"cgroup v{cg.version} memory controller (processes and files "
                                                 "in RAM-backed folders together; the kernel's OOM killer stops the job)"))
    else:
        rows.append(Enforcement("memory", False, f"polled: resident memory of the process tree every 0.25 s; files "
                                                 f"in RAM-backed folders are not counted ({cg.reason})"))
    disk_kernel = not scratch_problem()
    if backend == "none":
        rows.append(Enforcement("/tmp", disk_kernel, "no private /tmp: TMPDIR is the working folder (disk limit)"))
    else:
        rows.append(Enforcement("/tmp", True, f"private tmpfs with a size limit ({backend})"))
    if disk_kernel:
        rows.append(Enforcement("disk", True, "the working folder is a tmpfs of the limit's size (writes beyond it "
                                              "fail with ENOSPC; the pages count toward the memory limit too)"))
    else:
        rows.append(Enforcement("disk", False, f"polled: the working folder's size every 0.5 s, plus a per-file "
                                               f"size limit (RLIMIT_FSIZE); {scratch_problem()}"))
    if cg.pids:
        rows.append(Enforcement("processes", True, f"cgroup v{cg.version} pids controller (processes and threads)"))
    elif backend == "none" and os.geteuid() == 0:
        rows.append(Enforcement("processes", True, f"RLIMIT_NPROC for uid {NOBODY}, which only the job uses"))
    else:
        rows.append(Enforcement("processes", False, f"NOT LIMITED: no pids controller ({cg.reason})"))
    rows.append(Enforcement("cpu time", True, "RLIMIT_CPU per process; the wall-time limit bounds the rest"))
    rows.append(Enforcement("wall time", True, "the grader kills the job's process group"
                                               + (" and control group" if cg.version else "") + " at the limit"))
    leftovers = {"bwrap": "its own PID namespace (everything dies with it)",
                 "unshare": "its own PID namespace (everything dies with it)"}.get(backend, "")
    if cg.version:
        leftovers = (leftovers + "; " if leftovers else "") + "every process in its control group is killed"
    rows.append(Enforcement("processes left running", bool(leftovers),
                            leftovers or "NOT CLEANED UP: processes that leave the job's process group survive it"))
    rows.append(Enforcement("output", True, "stdout and stderr are pipes the grader reads; only their tails are "
                                            "kept, nothing is written to the grader's disk"))
    return rows


def strict_problems(backend: str | None = None) -> list[str]:
    """The limits the kernel does not enforce here (strict mode refuses to grade while any is listed)."""
    return [f"{e.resource}: {e.how}" for e in enforcement(backend) if not e.kernel]


# ------------------------------------------------------------------------------------------------
# Running a job
# ------------------------------------------------------------------------------------------------
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
) -> SandboxResult:
    """Run ``argv`` (paths as the child sees them) in the sandbox with ``workdir`` as ``/submission``.

    ``data_dir``, if given, is visible read-only as ``/data``. Nothing else of this machine's files
    is visible beyond the system and the Python installation (backend ``none`` excepted: there, a
    grader running as root runs the child as uid 65534, so file permissions protect its files).
    ``threads`` > 0 caps the numerical libraries' thread pools (several jobs share the cores).
    Limits: see :func:`enforcement` for how each is enforced here; ``workdir`` should come from
    :func:`scratch` so that its size limit is the kernel's.
    """
    from autograder import cgroups

    backend = backend or default_backend()
    workdir = Path(workdir).resolve()
    limits = {"time_limit_s": time_limit_s, "memory_limit_mb": memory_limit_mb, "disk_limit_mb": disk_limit_mb,
              "tmp_limit_mb": tmp_limit_mb, "max_processes": max_processes}
    if backend == "none":  # no namespace: map the fixed child paths onto the real folders
        argv = [a.replace(WORK, str(workdir)).replace(DATA, str(data_dir or workdir)) for a in argv]
    full_argv, wrap_env = _wrap(backend, workdir, data_dir, argv, tmp_limit_mb)
    env = {**_base_env(), **wrap_env, **(extra_env or {})}
    if threads > 0:
        env.update({key: str(threads) for key in THREAD_VARS})
    drop = False
    if backend == "none":
        env.update({"HOME": str(workdir), "COURSE_DATA_DIR": str(data_dir or workdir), "TMPDIR": str(workdir)})
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
            _give_to_nobody(workdir, data_dir)
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
    import resource

    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv built above, no shell
            full_argv,
            cwd=str(workdir) if backend == "none" else "/",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: _child_setup(max_file_mb, cpu_seconds, drop, procs_files, nproc),
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
                used = _tree_rss_mb(proc.pid)
                peak[0] = max(peak[0], used)
                if used > memory_limit_mb:
                    memory_over.set()
                    _kill(proc)
                    return
            if not kernel_disk and rounds % 2 == 0 and _folder_mb(workdir) > disk_limit_mb:
                disk_over.set()
                _kill(proc)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    timed_out = False
    try:
        proc.wait(timeout=time_limit_s)
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
    disk_used = _folder_mb(workdir)
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
    )


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def install_job(workdir: Path) -> None:
    """Copy this module and the NumPy Keras engine package into ``workdir`` so the child can run its jobs."""
    shutil.copyfile(__file__, Path(workdir) / JOB_FILE)
    copy_engine(Path(workdir) / ENGINE_PACKAGE)


def copy_engine(dest: Path) -> None:
    """Copy the NumPy Keras engine package (its ``.py`` files only) to ``dest``, a new folder."""
    engine = Path(__file__).with_name("keras_numpy")
    for path in sorted(engine.rglob("*.py")):
        target = dest / path.relative_to(engine)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def python_argv(job: str, *args: str) -> list[str]:
    """The child's command line for one of this module's jobs (run with isolated Python)."""
    return [sys.executable, "-I", f"{WORK}/{JOB_FILE}", job, *args]


# ------------------------------------------------------------------------------------------------
# Jobs that run inside the sandbox
# ------------------------------------------------------------------------------------------------
def _job_predict(kind: str, model_path: str, inputs_path: str, out_path: str, shape: str = "") -> None:
    """Load a student model safely and write its outputs on the inputs (reshaped to ``shape``) as .npy.

    ``keras``: the NumPy engine (``keras_numpy.py``: reads the config and weights, runs no code from
    the file) when it supports every layer of the model, else Keras itself in safe mode (no Lambda
    or other code-carrying layers). ``skops``: only scikit-learn types are trusted; anything else in
    the file is refused before loading. Next to the outputs, ``<out>.json`` says which engine ran.
    """
    import numpy as np

    inputs = np.load(inputs_path, allow_pickle=False, mmap_mode="r")
    if shape:
        inputs = inputs.reshape((len(inputs),) + tuple(int(d) for d in shape.split(",")))
    engine = kind
    if kind == "keras":
        try:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import _autograder_keras_numpy as keras_numpy

            model = keras_numpy.load(model_path)
            engine = "numpy"
        except Exception as exc:  # Unsupported, or anything the engine cannot read: Keras decides
            model = None
            engine = f"keras ({type(exc).__name__}: {str(exc)[:160]})"
        if model is not None:
            outputs = model.predict(np.asarray(inputs, dtype=np.float32), batch_size=500)
        else:
            os.environ.setdefault("KERAS_BACKEND", "tensorflow")
            import keras

            try:
                model = keras.saving.load_model(model_path, safe_mode=True, compile=False)
            except Exception as exc:  # say what the file is and what to do, not only Keras' words
                with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
                    json.dump({"engine": engine, "problem": _unreadable(model_path, engine, exc, keras.__version__)}, f)
                raise SystemExit(3) from None
            outputs = model.predict(np.asarray(inputs), batch_size=500, verbose=0)
    elif kind == "skops":
        import skops.io as sio

        untrusted = sio.get_untrusted_types(file=model_path)
        refused = [t for t in untrusted if not t.startswith("sklearn.")]
        if refused:
            raise TypeError(f"refusing to load types from outside scikit-learn: {', '.join(refused)}")
        model = sio.load(model_path, trusted=untrusted)
        outputs = model.predict_proba(inputs) if hasattr(model, "predict_proba") else model.decision_function(inputs)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    outputs = np.asarray(outputs)
    if outputs.dtype == object:
        raise TypeError("the model's output is not a numeric array")
    np.save(out_path, outputs.astype(np.float32), allow_pickle=False)
    with open(os.path.splitext(out_path)[0] + ".json", "w") as f:
        json.dump({"engine": engine}, f)


def _unreadable(model_path: str, engine: str, exc: Exception, pinned: str) -> str:
    """The student's message when neither the NumPy engine nor Keras can load a model file: what saved
    it, the engine's reason, Keras' most specific words, and what to do."""
    import re

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _autograder_keras_numpy.architecture import saved_by

    name = os.path.basename(model_path)
    producer = saved_by(model_path)
    reason = engine.split("(", 1)[-1][:-1] if engine.endswith(")") else engine  # "keras (<the engine's reason>)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    causes = [ln.split("Exception encountered:", 1)[1].strip() for ln in lines if "Exception encountered:" in ln]
    words = (causes[-1] if causes else lines[-1] if lines else type(exc).__name__)[:240]
    version = re.match(r"Keras (\d+)\.(\d+)", producer)
    newer = version is not None and tuple(map(int, version.groups())) > tuple(map(int, pinned.split(".")[:2]))
    if newer:
        return (f"{name} was saved by {producer}, newer than the grader's Keras {pinned}, and uses something it "
                f"does not know: its engine says {reason[:300]}, and Keras {pinned} says: {words}. Save the model with "
                f"Keras 3.0-{pinned} or tf.keras 2.12+ (model.save(\"{name}\")), or tell your instructor which Keras "
                "you used")
    return (f"{name} (saved by {producer}) cannot be loaded: the grader's engine says {reason[:300]}, and Keras "
            f"{pinned} says: {words}. Build the model from built-in Keras layers and save it with "
            f"model.save(\"{name}\")")


def _job_execute(notebook_path: str, executed_path: str, report_path: str) -> None:
    """Run a notebook top to bottom with a local kernel; write the executed copy and a JSON report."""
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    for key in ("HOME", "MPLCONFIGDIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "IPYTHONDIR"):
        os.makedirs(os.environ[key], exist_ok=True)
    nb = nbformat.read(notebook_path, as_version=4)
    # IPC sockets instead of TCP: the kernel needs no network at all.
    km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(tempfile.gettempdir(), "kernel"))
    # Like `nbgrader autograde`, keep going after a failing cell: a failed sanity check should not
    # cost the points of a model the notebook still saves. The first error is what gets reported.
    client = NotebookClient(
        nb, km=km, timeout=None, allow_errors=True, record_timing=True,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(notebook_path))}},
    )
    report = {"status": "ok", "errors": []}
    try:
        client.execute()
    except DeadKernelError as exc:
        report["errors"].append({"ename": "DeadKernelError", "evalue": str(exc)[:500]})
    finally:
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    report["errors"].append({
                        "ename": output.get("ename"),
                        "evalue": str(output.get("evalue"))[:500],
                        "cell": index,
                        "grade_id": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"),
                        "tags": cell.get("metadata", {}).get("tags", []),
                    })
        if report["errors"]:
            report["status"] = "error"
        nbformat.write(nb, executed_path)
        with open(report_path, "w") as f:
            json.dump(report, f)


def _child_main(argv: list[str]) -> int:
    jobs = {"predict": _job_predict, "execute": _job_execute}
    if not argv or argv[0] not in jobs:
        print(f"usage: {JOB_FILE} {{{','.join(jobs)}}} ARGS...", file=sys.stderr)
        return 2
    jobs[argv[0]](*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
