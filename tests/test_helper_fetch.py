"""A released notebook fetches its missing helper (course_data.py) and checks it, as on Colab."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import release

A = course_config.MNIST_DENSE


@pytest.fixture
def server(tmp_path):
    """A local web server publishing a release folder: (base URL, the folder it serves)."""
    folder = tmp_path / "published"
    for helper in release.helper_files(A):  # laid out as in the release folder
        (folder / helper).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release.HELPERS_DIR / helper, folder / helper)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/{{assignment}}", folder
    httpd.shutdown()


def run_cell(source: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the helper cell, then the notebook's import, as a fresh kernel on Colab would."""
    code = source + "\nfrom course_data import load_mnist\nprint('IMPORTED', load_mnist.__module__)\n"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_released_notebooks_carry_the_cell_before_their_imports():
    for a in course_config.ASSIGNMENTS.values():
        nb = nbformat.read(course_config.COURSE_DIR / "release" / a.name / a.notebook, as_version=4)
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        at = ids.index(release.HELPER_CELL_ID)
        assert ids[at + 1] == release.HELPER_CELL_BEFORE
        assert nb.cells[at].source == release.helper_cell_source(a)  # the configured URL and today's SHA-256
        assert nb.cells[at].metadata["nbgrader"]["locked"]


def test_missing_helper_is_downloaded_and_verified(server, tmp_path):
    url, folder = server
    work = tmp_path / "colab"
    work.mkdir()
    proc = run_cell(release.helper_cell_source(A, url=url.replace("{assignment}", "")), work)
    assert proc.returncode == 0, proc.stderr
    assert "downloaded course_data.py" in proc.stdout and "IMPORTED course_data" in proc.stdout
    for helper in release.helper_files(A):  # the student's check and the grader's engine too
        assert (work / helper).read_bytes() == (folder / helper).read_bytes(), helper
    check = subprocess.run([sys.executable, "-c", "import course_check, keras_numpy; print(keras_numpy.load)"],
                           cwd=work, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr


def test_tampered_helper_is_refused_and_not_kept(server, tmp_path):
    url, folder = server
    with open(folder / "course_data.py", "a") as f:
        f.write("\nimport os  # tampered\n")
    work = tmp_path / "colab"
    work.mkdir()
    proc = run_cell(release.helper_cell_source(A, url=url.replace("{assignment}", "")), work)
    assert proc.returncode != 0
    assert "is not the released file (SHA-256 mismatch)" in proc.stderr
    assert not (work / "course_data.py").exists()


def test_offline_says_what_to_do(tmp_path):
    work = tmp_path / "colab"
    work.mkdir()
    proc = run_cell(release.helper_cell_source(A, url="http://127.0.0.1:9/"), work)  # nothing listens
    assert proc.returncode != 0
    assert "could not download http://127.0.0.1:9/course_data.py" in proc.stderr
    assert "offline? upload course_data.py" in proc.stderr
    unset = run_cell(release.helper_cell_source(A, url=""), work)
    assert "course_data.py is missing: upload course_data.py" in unset.stderr


def test_present_helper_is_used_without_network(tmp_path):
    # plain Jupyter on the release folder, and the grader's sandbox (no network; official copy in place)
    work = tmp_path / "jupyter"
    shutil.copytree(course_config.COURSE_DIR / "release" / A.name, work)
    nb = nbformat.read(work / A.notebook, as_version=4)
    source = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == release.HELPER_CELL_ID)
    proc = run_cell(source.replace(repr(""), repr("http://127.0.0.1:9/"), 1), work)
    assert proc.returncode == 0, proc.stderr
    assert "downloaded" not in proc.stdout and "note:" not in proc.stdout and "IMPORTED" in proc.stdout
