"""The MNIST loader students and the grader share: lookup order, validation, clear errors."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from autograder import course_data
from autograder.course_data import DataError, load_mnist, read_mnist_file


@pytest.fixture
def real_file(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "real" / "mnist.npz"
    path.parent.mkdir()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No COURSE_DATA_DIR, an empty Keras cache, and no real download."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(course_data, "MNIST_URL", "http://127.0.0.1:9/mnist.npz")  # nothing listens there
    return tmp_path


def test_loads_real_mnist_from_course_data_dir(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_course_data_dir_comes_before_keras_cache(real_file, isolated, monkeypatch):
    cache = isolated / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"not a zip")
    monkeypatch.setenv("COURSE_DATA_DIR", str(real_file.parent))
    (x_train, _), _ = load_mnist()
    assert x_train.shape == (60000, 28, 28)


def test_falls_back_to_keras_cache(real_file, isolated, monkeypatch):
    cache = isolated / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    shutil.copyfile(real_file, cache / "mnist.npz")
    monkeypatch.setenv("COURSE_DATA_DIR", str(isolated / "empty"))
    (_, _), (_, y_test) = load_mnist()
    assert y_test.shape == (10000,)


def test_downloads_into_keras_cache_when_nowhere_else(real_file, isolated, monkeypatch, capsys):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(real_file.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(course_data, "MNIST_URL", f"http://127.0.0.1:{server.server_address[1]}/mnist.npz")
        (x_train, _), _ = load_mnist()
    finally:
        server.shutdown()
    assert x_train.shape == (60000, 28, 28)
    assert (isolated / "keras_home" / "datasets" / "mnist.npz").exists()
    assert not list((isolated / "keras_home" / "datasets").glob("*.part"))


def test_error_names_every_place_and_the_fix(isolated, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(isolated / "nowhere"))
    with pytest.raises(DataError) as err:
        load_mnist()
    msg = str(err.value)
    assert str(isolated / "nowhere" / "mnist.npz") in msg
    assert str(isolated / "keras_home" / "datasets" / "mnist.npz") in msg
    assert "download from http://127.0.0.1:9/mnist.npz" in msg
    assert "set COURSE_DATA_DIR" in msg


def test_truncated_file_is_reported(real_file, tmp_path):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(real_file.read_bytes()[: 1 << 20])
    with pytest.raises(DataError, match="not a readable .npz file"):
        read_mnist_file(bad)


def test_content_is_checked_not_just_shapes(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    x_test = x_test.copy()
    x_test[0, 0, 0] ^= 1
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(DataError, match="x_test has MNIST's shape but different content"):
        read_mnist_file(path)


def test_wrong_label_counts_are_reported(mnist, tmp_path):
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=np.sort(y_test))
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=np.zeros_like(y_test))
    with pytest.raises(DataError, match="y_test label counts"):
        read_mnist_file(path)


def test_file_without_test_labels_gives_none(mnist, tmp_path):
    (x_train, y_train), (x_test, _) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test)
    (_, _), (x, y) = load_mnist(path)
    assert x.shape == (10000, 28, 28) and y is None


def test_missing_training_array_is_an_error(mnist, tmp_path):
    (_, _), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_test=x_test, y_test=y_test)
    with pytest.raises(DataError, match="'x_train' is missing"):
        read_mnist_file(path)


def test_loader_is_standalone():
    """Students get this file alone: at import time it needs only numpy and the standard library.

    Optional accelerators (pyarrow, tqdm) may be imported inside functions, each with a fallback.
    """
    import ast
    import sys

    tree = ast.parse(Path(course_data.__file__).read_text())
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top.add(node.module.split(".")[0])
    assert top - set(sys.stdlib_module_names) <= {"numpy", "__future__"}
    inner = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    inner |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert inner - set(sys.stdlib_module_names) <= {"numpy", "__future__", "tqdm", "pyarrow"}
