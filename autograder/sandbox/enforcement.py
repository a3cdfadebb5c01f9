"""How each limit is enforced on this machine (``autograder doctor`` prints it; strict mode refuses
to grade while the kernel does not enforce one), and whether a child can use this machine's GPUs."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.sandbox import cgroups, gpus
from autograder.sandbox.backends import NOBODY, default_backend
from autograder.sandbox.run import run_job
from autograder.sandbox.scratch import scratch, scratch_problem


@dataclass(frozen=True)
class Enforcement:
    resource: str
    kernel: bool  # enforced by the kernel (not by the grader watching)
    how: str


def enforcement(backend: str | None = None) -> list[Enforcement]:
    """For every limit, whether the kernel enforces it on this machine with ``backend``, and how."""
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


class StrictRefused(RuntimeError):
    """Strict mode and a limit the kernel does not enforce here: nothing may be graded."""


def preflight(backend: str, strict: bool, warn) -> list[str]:
    """Before grading anything: the limits the kernel does not enforce here. In strict mode, StrictRefused naming
    them; otherwise each is said through ``warn`` (a function of one line), and returned."""
    weak = strict_problems(backend)
    if weak and strict:
        raise StrictRefused(
            "strict mode: the kernel does not enforce these sandbox limits here, so nothing was graded:\n  "
            + "\n  ".join(weak)
            + "\n(`autograder doctor` shows every limit; grade as root on a machine with cgroups and bubblewrap)"
        )
    for problem in weak:
        warn(f"WARNING: a sandbox limit the kernel does not enforce here: {problem}")
    return weak


def gpu_check(backend: str | None = None, devices: dict[str, str] | None = None) -> dict:
    """Run a child with ``devices`` (default: this machine's GPUs) and report what it could use there.

    The report: ``devices`` (each child path: "ok" or why it cannot be opened), ``cuda`` ("ok" or why the
    driver does not start, for NVIDIA devices), ``cuda_devices``, and ``problem``: "" when the child can
    use a GPU, else one sentence saying why not.
    """
    backend = backend or default_backend()
    devices = gpus.gpu_devices() if devices is None else devices
    if not devices:
        return {"devices": {}, "problem": "no GPU device (/dev/nvidia*, /dev/kfd) on this machine"}
    seen_as = list(devices) if backend == "bwrap" else list(devices.values())  # the others show /dev as it is
    with scratch(64) as workdir:
        result = run_job([sys.executable, "-I", "-c", gpus.PROBE, *seen_as], Path(workdir), time_limit_s=120,
                         memory_limit_mb=2048, backend=backend, devices=devices)
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"devices": {}, "problem": f"the GPU probe failed in the sandbox: {result.problem() or result.stderr[-300:]}"}
    broken = {path: why for path, why in report["devices"].items() if why != "ok"}
    if broken:
        report["problem"] = "GPU devices cannot be used in the sandbox: " + ", ".join(f"{p} ({w})" for p, w in broken.items())
    elif report.get("cuda", "ok") != "ok":
        report["problem"] = report["cuda"]
    elif "cuda" in report and report.get("cuda_devices", 0) < 1:
        report["problem"] = "the CUDA driver sees no GPU in the sandbox (CUDA_VISIBLE_DEVICES?)"
    else:
        report["problem"] = ""
    return report
