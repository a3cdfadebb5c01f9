"""Kernel limits for one sandboxed job: a control group with a memory and a process-count limit.

The memory controller counts everything the job's processes make resident, files they write into
RAM-backed folders (tmpfs: ``/tmp`` and the scratch folder) included, and the kernel's OOM killer
stops the job at the limit. The pids controller caps processes and threads together (a fork bomb
gets ``EAGAIN``). At the end every process left in the group is killed, even ones that escaped the
job's process group (a daemonised child, a double fork). The group also counts the CPU time of
everything in it (v2's ``cpu.stat``, v1's ``cpuacct`` controller where it is mounted): a parent's
``getrusage`` misses processes that are not reaped by their own parent, such as everything inside
bubblewrap's PID namespace.

Both cgroup versions are supported and detected, never assumed: v2 (the unified hierarchy, where the
grader's own group must delegate ``memory`` and ``pids``) or v1 (one hierarchy per controller, as on
machines that mount ``/sys/fs/cgroup/memory`` and ``/sys/fs/cgroup/pids``). Job groups are created
below the grader's own groups, so a limit set on the grader (a container's) still holds around them.
Where neither works (no cgroup file system, no write permission), :func:`support` says why and the
sandbox falls back to polling (see :mod:`autograder.sandbox.run`).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PREFIX = "autograder-job-"
_counter = itertools.count()


@dataclass(frozen=True)
class Support:
    """What this machine's cgroups can do for the sandbox."""

    version: int  # 2, 1, or 0 (none usable)
    memory: Path | None  # the folder under which job groups with a memory controller are made
    pids: Path | None  # the same for the pids controller (v2: the same folder as memory)
    reason: str  # why a controller is missing, or "" when both work
    cpuacct: Path | None = None  # v1 only, where mounted: CPU time accounting (v2 counts it in every group)

    def describe(self) -> str:
        if self.version == 0:
            return f"no usable cgroups ({self.reason})"
        have = [name for name, path in (("memory", self.memory), ("pids", self.pids)) if path]
        text = f"cgroup v{self.version} ({' and '.join(have)} at {self.memory or self.pids})"
        return text + (f"; {self.reason}" if self.reason else "")


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every mount, from /proc/self/mountinfo."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) >= 5 and len(rest) >= 3:
            out.append((fields[4].replace("\\040", " "), rest[0], rest[2]))
    return out


def _own_groups() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's group path, from /proc/self/cgroup."""
    groups = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            groups[c] = path
    return groups


def _try_child(parent: Path, files: tuple[str, ...]) -> str:
    """"" if a job group can be made under ``parent`` with ``files`` in it, else the reason."""
    probe = parent / f"{PREFIX}probe-{os.getpid()}"
    try:
        probe.mkdir()
    except OSError as exc:
        return f"cannot create a group under {parent}: {exc.strerror}"
    try:
        missing = [f for f in files if not (probe / f).exists()]
        return f"{', '.join(missing)} missing under {parent}" if missing else ""
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


def _v2_support(mounts) -> Support | None:
    points = [m for m, fstype, _ in mounts if fstype == "cgroup2"]
    own = _own_groups().get("")
    if not points or own is None:
        return None
    for point in points:
        base = Path(point) / own.lstrip("/")
        if not (base / "cgroup.controllers").is_file():
            continue
        available = (base / "cgroup.controllers").read_text().split()
        if not {"memory", "pids"} <= set(available):
            continue
        enabled = (base / "cgroup.subtree_control").read_text().split()
        if not {"memory", "pids"} <= set(enabled):
            try:  # fails while the grader's group holds processes (v2's no-internal-process rule)
                (base / "cgroup.subtree_control").write_text("+memory +pids")
            except OSError as exc:
                return Support(0, None, None, f"cgroup v2 at {base} does not delegate memory and pids to "
                                              f"child groups ({exc.strerror}); run the grader in a delegated group")
        reason = _try_child(base, ("memory.max", "pids.max"))
        if not reason:
            return Support(2, base, base, "")
        return Support(0, None, None, f"cgroup v2: {reason}")
    return None


def _v1_controller(mounts, own: dict[str, str], controller: str, probe_file: str) -> tuple[Path | None, str]:
    """The folder under which v1 job groups of ``controller`` can be made, or None and the reason."""
    points = [m for m, fstype, opts in mounts if fstype == "cgroup" and controller in opts.split(",")]
    if not points or controller not in own:
        return None, f"no cgroup v1 {controller} controller mounted"
    base = Path(points[0]) / own[controller].lstrip("/")
    reason = _try_child(base, (probe_file,))
    return (None, f"{controller}: {reason}") if reason else (base, "")


def _v1_support(mounts) -> Support:
    own = _own_groups()
    found: dict[str, Path] = {}
    reasons = []
    for controller, limit_file in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max")):
        base, reason = _v1_controller(mounts, own, controller, limit_file)
        if base is None:
            reasons.append(reason)
        else:
            found[controller] = base
    if not found:
        return Support(0, None, None, "; ".join(reasons) or "no cgroup file system")
    # Accounting only: without it CPU time comes from getrusage, so its reason is not kept.
    cpuacct, _ = _v1_controller(mounts, own, "cpuacct", "cpuacct.usage")
    return Support(1, found.get("memory"), found.get("pids"), "; ".join(reasons), cpuacct)


@lru_cache(maxsize=None)
def support() -> Support:
    """How job groups can be made on this machine (v2 first, then v1), with the reason when not."""
    mounts = _mounts()
    v2 = _v2_support(mounts)
    if v2 is not None and v2.version:
        return v2
    v1 = _v1_support(mounts)
    if v1.version == 0 and v2 is not None:
        return Support(0, None, None, f"{v2.reason}; {v1.reason}")
    return v1


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _read_keyed(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _remove_stale(parent: Path) -> None:
    """Remove job groups left by graders that died (kill -9): empty ones, of processes that are gone."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        owner = entry.name[len(PREFIX):].split("-")[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                entry.rmdir()
            except OSError:
                pass


class JobGroup:
    """The control group(s) of one job: limits in, usage figures out, everything killed at the end."""

    def __init__(self, memory_mb: int, max_processes: int):
        s = support()
        if s.version == 0:
            raise RuntimeError(f"no usable cgroups: {s.reason}")
        self.version = s.version
        name = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        self.dirs: dict[str, Path] = {}
        try:
            for controller, parent in (("memory", s.memory), ("pids", s.pids), ("cpuacct", s.cpuacct)):
                if parent is None:
                    continue
                if parent in self.dirs.values():  # v2: one group holds both controllers
                    self.dirs[controller] = parent / name
                    continue
                _remove_stale(parent)
                (parent / name).mkdir()
                self.dirs[controller] = parent / name
            self._limit(memory_mb, max_processes)
        except OSError:
            self.close()
            raise

    def _limit(self, memory_mb: int, max_processes: int) -> None:
        mem, pids = self.dirs.get("memory"), self.dirs.get("pids")
        limit = str(memory_mb * 2**20)
        if mem is not None and self.version == 2:
            (mem / "memory.max").write_text(limit)
            if (mem / "memory.swap.max").exists():
                (mem / "memory.swap.max").write_text("0")
        elif mem is not None:
            (mem / "memory.limit_in_bytes").write_text(limit)
            if (mem / "memory.memsw.limit_in_bytes").exists():  # swap accounting on: no swapping around it
                try:
                    (mem / "memory.memsw.limit_in_bytes").write_text(limit)
                except OSError:
                    pass
        if pids is not None:
            (pids / "pids.max").write_text(str(max_processes))

    @property
    def enforces(self) -> set[str]:
        return {c for c in ("memory", "pids") if c in self.dirs}

    def procs_files(self) -> list[str]:
        """The cgroup.procs files a new child writes its pid into (once for each distinct group)."""
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer stopped in this group (0 without a memory controller)."""
        mem = self.dirs.get("memory")
        if mem is None:
            return 0
        if self.version == 2:
            return _read_keyed(mem / "memory.events", "oom_kill")
        return _read_keyed(mem / "memory.oom_control", "oom_kill")

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) of every process that ran in the group, or None where not counted."""
        if self.version == 2 and "memory" in self.dirs:
            stat = self.dirs["memory"] / "cpu.stat"
            return _read_keyed(stat, "usage_usec") / 1e6 if stat.exists() else None
        if "cpuacct" in self.dirs:
            return _read_int(self.dirs["cpuacct"] / "cpuacct.usage") / 1e9
        return None

    def usage(self) -> dict:
        """Peak memory (MB), OOM kills, peak processes, refused forks and CPU seconds, as far as the kernel reports them."""
        out = {}
        cpu = self.cpu_seconds()
        if cpu is not None:
            out["cpu_seconds"] = cpu
        mem, pids = self.dirs.get("memory"), self.dirs.get("pids")
        if mem is not None:
            peak = mem / ("memory.peak" if self.version == 2 else "memory.max_usage_in_bytes")
            out["peak_memory_mb"] = _read_int(peak) / 2**20
            out["oom_kills"] = self.oom_kills()
        if pids is not None:
            if (pids / "pids.peak").exists():
                out["peak_processes"] = _read_int(pids / "pids.peak")
            out["refused_forks"] = _read_keyed(pids / "pids.events", "max")
        return out

    def pids(self) -> set[int]:
        found = set()
        for d in set(self.dirs.values()):
            try:
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return found

    def kill_all(self, timeout_s: float = 10.0) -> None:
        """SIGKILL every process in the group until none is left (new forks are caught on the next round)."""
        for d in set(self.dirs.values()):
            if (d / "cgroup.kill").exists():
                try:
                    (d / "cgroup.kill").write_text("1")
                except OSError:
                    pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def close(self) -> None:
        """Kill what is left and remove the group(s)."""
        self.kill_all()
        for d in set(self.dirs.values()):
            for _ in range(50):  # the kernel needs a moment after the last process exits
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = {}

