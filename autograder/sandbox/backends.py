"""The isolation backends, best first: ``bwrap`` (bubblewrap), ``unshare`` (util-linux, with a chroot
built from bind mounts) and ``none`` (resource limits and a scratch folder only; used only where neither
works, with a warning in every result). ``AUTOGRADER_SANDBOX`` picks one.

Whatever the backend, the child sees its scratch folder as ``/submission`` (:data:`WORK`) and the
read-only data folder as ``/data`` (:data:`DATA`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

from autograder.sandbox.limits import DATA, NOBODY, WORK, base_env

SANDBOX_ENV = "AUTOGRADER_SANDBOX"
BACKENDS = ("bwrap", "unshare", "none")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "passwd", "group", "nsswitch.conf",
    "localtime", "ssl", "ca-certificates", "fonts", "mime.types", "matplotlibrc",
)


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


def readonly_roots() -> list[str]:
    paths = [d for d in _SYSTEM_DIRS if os.path.exists(d)]
    paths += [f"/etc/{name}" for name in _ETC_FILES if os.path.exists(f"/etc/{name}")]
    for root in _python_roots():
        if not any(root == p or root.startswith(p + "/") for p in paths):
            paths.append(root)
    return paths


def _bwrap_argv(workdir: Path, data_dir: Path | None, inner: list[str], tmp_mb: int,
                devices: dict[str, str] | None = None) -> list[str]:
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
            "--proc", "/proc", "--dev", "/dev", "--size", str(tmp_mb * 2**20), "--tmpfs", "/tmp"]
    for inside, here in sorted((devices or {}).items()):  # GPUs, when the job is given them (sandbox.gpus)
        argv += ["--dev-bind", here, inside]
    for path in readonly_roots():
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


def give_to_nobody(workdir: Path, data_dir: Path | None) -> None:
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
        give_to_nobody(workdir, data_dir)
    argv = ["unshare", "--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child", "--propagation", "private"]
    if userns:
        argv.append("--map-root-user")
    argv += ["/bin/sh", "-c", _UNSHARE_SCRIPT, "sandbox"] + inner
    env = {
        "RO_PATHS": " ".join(readonly_roots()),
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
        argv, extra = wrap(backend, Path(tmp), None, [sys.executable, "-c", "import os; print(os.getcwd())"])
        try:
            res = probe(argv, env={**base_env(), **extra}, capture_output=True, text=True, timeout=60)
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


def wrap(backend: str, workdir: Path, data_dir: Path | None, inner: list[str],
          tmp_mb: int = 64, devices: dict[str, str] | None = None) -> tuple[list[str], dict]:
    """The command line that runs ``inner`` in ``backend``, and what it adds to the child's environment.

    ``devices`` (``{path in the child: device node here}``) are bound into bubblewrap's ``/dev``; the
    other backends show the child this machine's ``/dev`` whole."""
    if backend == "bwrap":
        return _bwrap_argv(workdir, data_dir, inner, tmp_mb, devices), {}
    if backend == "unshare":
        return _unshare_argv(workdir, data_dir, inner, tmp_mb)
    return inner, {}
