"""The scratch folder: a size-limited file system of its own where the kernel allows one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

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


def folder_mb(path: Path) -> float:
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
