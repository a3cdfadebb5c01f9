"""GPUs in the sandbox: a re-executed notebook is given the GPU device nodes only when its job asks, and the
GPU check says, before anything is graded, whether a sandboxed child could use them.

This machine has no GPU: the device nodes here are real character devices made for the test (the
kernel's null device under another name), bound into the child exactly as /dev/nvidia0 would be.
What only a real GPU shows (CUDA starting in the child) is the GPU check's last step; here it must
say that the NVIDIA driver's library is missing.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

import course_config
from autograder import sandbox
from autograder.datasets.tasks import MnistTask
from autograder.grading.execute import execute_notebook
from autograder.sandbox.gpus import gpu_devices

needs_bwrap = pytest.mark.skipif("bwrap" not in sandbox.available_backends() or os.geteuid() != 0,
                                 reason="binding device nodes into the child needs bubblewrap, and making them root")


def fake_gpu(folder: Path) -> dict[str, str]:
    """Device nodes named as NVIDIA's are, for a child: ``{path in the child: device node here}``."""
    folder.mkdir(parents=True, exist_ok=True)
    devices = {}
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        os.mknod(folder / name, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a character device, as the GPU's is
        devices[f"/dev/{name}"] = str(folder / name)
    return devices


PROBE = """
import json, os, stat
seen = {p: stat.S_ISCHR(os.stat(p).st_mode) for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm")
        if os.path.exists(p)}
for p in seen:
    with open(p, "w") as f:
        f.write("x")  # usable, not only visible
keys = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "TF_FORCE_GPU_ALLOW_GROWTH", "XLA_PYTHON_CLIENT_PREALLOCATE")
print(json.dumps({"seen": seen, "env": {k: os.environ.get(k) for k in keys}}))
"""


def run_probe(tmp_path: Path, devices) -> dict:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    (work / "probe.py").write_text(PROBE)
    result = sandbox.run_job([sys.executable, "-I", f"{sandbox.WORK}/probe.py"], work, time_limit_s=60,
                             memory_limit_mb=1024, backend="bwrap", devices=devices)
    assert result.ok, result.stderr
    return json.loads(result.stdout)


def test_gpu_devices_lists_the_gpu_nodes_only(tmp_path):
    dev = tmp_path / "dev"
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-caps/nvidia-cap1", "kfd", "dri/renderD128",
                 "dri/card0", "sda", "null"):
        (dev / name).parent.mkdir(parents=True, exist_ok=True)
        (dev / name).write_text("")
    found = gpu_devices(dev)
    assert found == {f"/dev/{n}": str(dev / n) for n in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm",
                                                        "nvidia-caps/nvidia-cap1", "kfd", "dri/renderD128")}
    assert gpu_devices(tmp_path / "empty") == {}


@needs_bwrap
def test_a_job_sees_gpus_only_when_it_is_given_them(tmp_path, monkeypatch):
    devices = fake_gpu(tmp_path / "devices")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # as Slurm or the worker's launcher would set it
    given = run_probe(tmp_path, devices)
    assert given["seen"] == {"/dev/nvidia0": True, "/dev/nvidiactl": True, "/dev/nvidia-uvm": True}
    assert given["env"] == {"CUDA_VISIBLE_DEVICES": "1", "HIP_VISIBLE_DEVICES": None,
                            "TF_FORCE_GPU_ALLOW_GROWTH": "true", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    without = run_probe(tmp_path, None)
    assert without["seen"] == {}
    assert without["env"]["CUDA_VISIBLE_DEVICES"] == "" and without["env"]["HIP_VISIBLE_DEVICES"] == ""
    assert without["env"]["TF_FORCE_GPU_ALLOW_GROWTH"] is None


@needs_bwrap
def test_the_gpu_check_reports_what_a_child_could_not_use(tmp_path):
    devices = fake_gpu(tmp_path / "devices")
    report = sandbox.gpu_check("bwrap", devices)
    assert report["devices"] == {path: "ok" for path in devices}
    if ctypes.util.find_library("cuda") is None:  # this machine: no NVIDIA driver, so CUDA cannot start
        assert report["problem"].startswith("libcuda.so.1 (the NVIDIA driver's library) cannot be loaded")
    (tmp_path / "plain").write_text("")
    report = sandbox.gpu_check("bwrap", {"/dev/kfd": str(tmp_path / "plain")})
    assert report["problem"] == "GPU devices cannot be used in the sandbox: /dev/kfd (not a character device)"
    rocm = sandbox.gpu_check("bwrap", {"/dev/kfd": devices["/dev/nvidia0"]})  # ROCm: no CUDA driver to start
    assert rocm["problem"] == "" and rocm["devices"] == {"/dev/kfd": "ok"}
    if not gpu_devices():
        assert sandbox.gpu_check("bwrap")["problem"] == "no GPU device (/dev/nvidia*, /dev/kfd) on this machine"


@needs_bwrap
def test_a_notebook_re_executed_with_gpus_runs_with_the_devices(tmp_path, monkeypatch):
    import nbformat

    a = course_config.MNIST_DENSE
    devices = fake_gpu(tmp_path / "devices")
    monkeypatch.setattr(sandbox, "gpu_devices", lambda: devices)  # this machine's GPUs, as the grader finds them
    code = textwrap.dedent("""
        import json, os
        json.dump({"nvidia0": os.path.exists("/dev/nvidia0"), "growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH")},
                  open("seen.json", "w"))
    """)
    task = MnistTask()
    try:
        seen = {}
        for gpus in (1, 0):
            work = tmp_path / f"work{gpus}"
            work.mkdir()
            nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), work / a.notebook)
            run = execute_notebook(work, a, task, profile=course_config.profile("quick"), limits=course_config.LIMITS,
                                   release_dir=tmp_path / "no-release", backend="bwrap", keep_dir=None, gpus=gpus)
            assert run.report["status"] == "ok", run
            seen[gpus] = (json.loads((work / "seen.json").read_text()), run.report.get("gpu_devices"))
    finally:
        task.close()
    assert seen[1] == ({"nvidia0": True, "growth": "true"}, sorted(devices))
    assert seen[0] == ({"nvidia0": False, "growth": None}, None)
