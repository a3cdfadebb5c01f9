"""A released notebook is one file: its helper cell carries the course's helpers, checked, with no upload or network."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import release

A = course_config.MNIST_DENSE
COURSE = course_config.COURSE_DIR


def helper_source(a=A) -> str:
    nb = nbformat.read(COURSE / "release" / a.name / a.notebook, as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == release.HELPER_CELL_ID)


def run_cell(source: str, cwd: Path, then: str = "") -> subprocess.CompletedProcess:
    """The helper cell, then ``then``, in a fresh Python as a fresh kernel runs them; without a network where the
    machine can take one away (a network namespace of its own)."""
    code = source + "\n" + (then or "from course_data import load_mnist\nprint('IMPORTED', load_mnist.__module__)\n")
    argv = [sys.executable, "-c", code]
    if shutil.which("unshare") and os.geteuid() == 0:
        argv = ["unshare", "--net", *argv]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})


def test_a_release_is_one_notebook_whose_helper_cell_comes_before_its_imports():
    for a in course_config.ASSIGNMENTS.values():
        assert sorted(p.name for p in (COURSE / "release" / a.name).iterdir()) == [a.notebook]
        nb = nbformat.read(COURSE / "release" / a.name / a.notebook, as_version=4)
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        at = ids.index(release.HELPER_CELL_ID)
        cell = nb.cells[at]
        assert ids[at + 1] == release.HELPER_CELL_BEFORE
        assert cell.source == release.helper_cell_source(a)  # today's helpers, byte for byte
        assert cell.metadata["nbgrader"]["locked"]
        # shown collapsed in JupyterLab and as a titled form on Colab, not as pages of code
        assert cell.metadata["jupyter"]["source_hidden"] and cell.metadata["cellView"] == "form"
        assert cell.source.startswith("#@title ")


def test_the_cell_carries_the_graders_own_files(tmp_path):
    """What a notebook unpacks is byte for byte the grader's reader, engine, checks and loaders."""
    for a in course_config.ASSIGNMENTS.values():
        with zipfile.ZipFile(io.BytesIO(release.helpers_zip(a))) as archive:
            names = archive.namelist()
            assert names == release.helper_files(a)
            for name in names:
                assert archive.read(name) == (release.HELPERS_DIR / name).read_bytes(), name
    assert {"course_data/__init__.py", "course_data/mnist.py", "course_check.py", "keras_numpy/__init__.py"} <= set(
        release.helper_files(A))


def test_a_clean_folder_without_network_imports_the_helpers(tmp_path):
    """Colab with nothing uploaded, a laptop offline: the notebook alone is enough, and nothing lands beside it."""
    proc = run_cell(helper_source(), tmp_path, then=(
        "import course_check, keras_numpy\nfrom course_data import load_mnist\n"
        "print('IMPORTED', load_mnist.__module__, keras_numpy.load.__module__, course_check.verdict.__name__)\n"))
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED course_data.mnist keras_numpy" in proc.stdout
    assert "course helpers" in proc.stdout and "ready" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # no helper files next to the notebook


def test_helpers_in_the_cell_win_over_stale_copies_beside_the_notebook(tmp_path):
    """A folder from an older release (its own course_data.py beside the notebook) uses the released code."""
    (tmp_path / "course_data.py").write_text("raise RuntimeError('an old copy')\n")
    proc = run_cell(helper_source(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED course_data" in proc.stdout


def test_a_changed_cell_is_refused(tmp_path):
    source = helper_source()
    lines = source.splitlines()
    at = next(i for i, line in enumerate(lines) if len(line) == 100 and " " not in line)  # a line of the archive
    lines[at] = lines[at][:50] + ("A" if lines[at][50] != "A" else "B") + lines[at][51:]
    proc = run_cell("\n".join(lines), tmp_path)
    assert proc.returncode != 0
    assert "not the code released with this notebook" in proc.stderr


@pytest.mark.parametrize("name", list(course_config.ASSIGNMENTS))
def test_every_assignments_cell_unpacks(name, tmp_path):
    a = course_config.assignment(name)
    proc = run_cell(helper_source(a), tmp_path, then="import course_check, course_data, keras_numpy\nprint('OK')\n")
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr
