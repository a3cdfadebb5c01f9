"""How a sandboxed job ended (:class:`SandboxResult`) and what a student reads when it failed."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field


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
    started_at: float = 0.0  # time.time() when the job was started (the child's own clock reads the same)

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
