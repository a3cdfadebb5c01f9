"""GPUs for a child that re-runs a notebook: the device nodes it is given, the environment that selects
them, and the probe script that proves a GPU works inside the sandbox (run by
:func:`autograder.sandbox.enforcement.gpu_check` before anything is graded).

A child is given GPUs only when its job asks (``run_job(..., devices=gpu_devices())``; the batch asks
for re-execution with ``--gpus-per-task``). With bubblewrap, the child's ``/dev`` is a fresh minimal one
and the GPU device nodes are bound into it one by one; the ``unshare`` and ``none`` backends show the
child this machine's ``/dev`` as it is. Either way a child without GPUs gets ``CUDA_VISIBLE_DEVICES=""``
(and its ROCm twins), so that on a GPU node a saved-model prediction never takes a GPU's memory; a child
with GPUs gets the scheduler's selection (``CUDA_VISIBLE_DEVICES`` as Slurm or Dask set it for the
worker) and frameworks told to allocate GPU memory as they go, so that jobs sharing a GPU fit on it.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

# Device nodes a GPU job needs: NVIDIA's (the GPUs, the control device, unified memory, MIG
# capabilities) and AMD ROCm's (the compute interface, the render nodes).
DEVICE_PATTERNS = ("nvidia[0-9]*", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset",
                   "nvidia-caps/*", "kfd", "dri/renderD*")
# How a scheduler tells a process which of the node's GPUs are its own: passed on to a child with GPUs.
SELECTION_VARS = ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                  "GPU_DEVICE_ORDINAL")
# A child without GPUs: no framework finds one, whatever /dev shows.
HIDDEN = {"CUDA_VISIBLE_DEVICES": "", "HIP_VISIBLE_DEVICES": "", "ROCR_VISIBLE_DEVICES": ""}
# A child with GPUs: TensorFlow and JAX take GPU memory as needed, not (nearly) all of it at start.
SHARED = {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def gpu_devices(dev_dir: str | Path = "/dev") -> dict[str, str]:
    """This machine's GPU device nodes, as ``{path in the child: path here}`` (empty without a GPU)."""
    dev_dir = Path(dev_dir)
    found = {}
    for pattern in DEVICE_PATTERNS:
        for path in sorted(glob.glob(str(dev_dir / pattern))):
            if os.path.exists(path) and not os.path.isdir(path):
                found["/dev/" + str(Path(path).relative_to(dev_dir))] = path
    return found


def child_env(devices: dict[str, str] | None) -> dict[str, str]:
    """The GPU part of a child's environment: the scheduler's selection with ``devices``, none without."""
    if not devices:
        return dict(HIDDEN)
    env = {key: os.environ[key] for key in SELECTION_VARS if key in os.environ}
    return {**env, **SHARED}


PROBE = r"""  # run in the child with the device paths as arguments; prints a JSON report
import ctypes, json, os, stat, sys
seen = {}
for path in sys.argv[1:]:
    try:
        st = os.stat(path)
        fd = os.open(path, os.O_RDWR)
        os.close(fd)
        seen[path] = "ok" if stat.S_ISCHR(st.st_mode) else "not a character device"
    except OSError as exc:
        seen[path] = exc.strerror or type(exc).__name__
report = {"devices": seen}
if any(os.path.basename(p).startswith("nvidia") for p in seen):
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        report["cuda"] = f"libcuda.so.1 (the NVIDIA driver's library) cannot be loaded: {exc}"
    else:
        count = ctypes.c_int(0)
        code = cuda.cuInit(0)
        if code == 0:
            code = cuda.cuDeviceGetCount(ctypes.byref(count))
        report["cuda"] = "ok" if code == 0 else f"the CUDA driver failed to start (CUresult {code})"
        report["cuda_devices"] = count.value
print(json.dumps(report))
"""
