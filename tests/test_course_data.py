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
from autograder.course_data import DataError, load_mnist, move_digits, read_mnist_file


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
    monkeypatch.setattr(course_data.mnist, "MNIST_URL", "http://127.0.0.1:9/mnist.npz")  # nothing listens there
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
        monkeypatch.setattr(course_data.mnist, "MNIST_URL", f"http://127.0.0.1:{server.server_address[1]}/mnist.npz")
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


def test_the_test_part_alone_is_read_and_checked(mnist, tmp_path):
    """The grader reads only the test arrays when no notebook runs: the same arrays, checked as strictly."""
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train[:10], y_train=y_train[:10], x_test=x_test, y_test=y_test)  # a cut training set
    (x, y), (xt, yt) = load_mnist(path, parts=("test",))
    assert x is None and y is None and np.array_equal(xt, x_test) and np.array_equal(yt, y_test)
    with pytest.raises(DataError, match="x_train is uint8"):
        load_mnist(path)
    y_changed = y_test.copy()
    y_changed[[0, 1]] = y_changed[[1, 0]]  # two labels swapped: same counts, different content
    np.savez(path, x_test=x_test, y_test=y_changed)
    with pytest.raises(DataError, match="y_test has MNIST's shape but different content"):
        load_mnist(path, parts=("test",))


def test_loader_is_standalone():
    """Students get this package alone: at import time every module of it needs only numpy and the standard
    library, and its modules import one another relatively (it is imported as ``course_data``, not autograder's).

    Optional accelerators (pyarrow, tqdm) may be imported inside functions, each with a fallback.
    """
    import ast
    import sys

    package = Path(course_data.__file__).parent
    paths = sorted(package.glob("*.py"))
    siblings = {path.stem for path in paths}
    assert {"__init__", "common", "mnist", "susy"} <= siblings
    for path in paths:
        tree = ast.parse(path.read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                top |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
        assert top - set(sys.stdlib_module_names) <= {"numpy", "__future__"}, path.name
        inner = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        inner |= {node.module.split(".")[0] for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
        assert inner - set(sys.stdlib_module_names) <= {"numpy", "__future__", "tqdm", "pyarrow"}, path.name
        relative = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]
        assert all(node.level == 1 and node.module in siblings for node in relative), path.name


# -- moved digits ------------------------------------------------------------------------------
def test_move_digits_is_reproducible_and_moves_every_digit(mnist):
    _, (x_test, _) = mnist
    x = x_test[:500]
    moved = move_digits(x, seed=3)
    assert moved.shape == x.shape and moved.dtype == np.uint8
    assert np.array_equal(moved, move_digits(x, seed=3))
    assert not np.array_equal(moved, move_digits(x, seed=4))
    changed = np.abs(moved.astype(int) - x).sum(axis=(1, 2))
    assert np.all(changed > 0), "every digit is moved"
    # The ink stays (up to what a zoom adds or takes and what leaves the box): a moved digit, not noise.
    ratio = moved.sum(axis=(1, 2)) / x.sum(axis=(1, 2))
    assert 0.6 < ratio.min() and ratio.max() < 1.5 and abs(np.median(ratio) - 1) < 0.05


def test_move_digits_without_movement_is_the_identity(mnist):
    _, (x_test, _) = mnist
    assert np.array_equal(move_digits(x_test[:100], seed=0, rotation_deg=0, shift_px=0, zoom=0), x_test[:100])


def test_move_digits_moves_as_asked(mnist):
    """A pure shift by a whole number of pixels moves the ink's centre by that much; a rotation turns it."""
    _, (x_test, _) = mnist
    x = x_test[:200].astype(np.float64)

    def centre(images):
        rows, cols = np.mgrid[0:28, 0:28]
        mass = images.sum(axis=(1, 2))
        return (images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass

    shifted = move_digits(x, seed=1, rotation_deg=0, zoom=0, shift_px=3).astype(np.float64)
    dy = centre(shifted)[0] - centre(x)[0]
    assert np.abs(dy).max() <= 3.2 and np.abs(dy).mean() > 1.0
    zoomed = move_digits(x, seed=1, rotation_deg=0, shift_px=0, zoom=0.15)
    ratio = zoomed.sum(axis=(1, 2)) / x.sum(axis=(1, 2))
    assert 0.85**2 - 0.05 < ratio.min() and ratio.max() < 1.15**2 + 0.05  # ink scales with the area


def test_move_digits_same_movement_for_every_shape_and_scale(mnist):
    _, (x_test, _) = mnist
    x = x_test[:50]
    as_uint8 = move_digits(x, seed=5)
    as_float = move_digits(x.astype("float32")[..., None] / 255.0, seed=5)
    assert as_float.shape == (50, 28, 28, 1) and as_float.dtype == np.float32
    assert np.abs(as_float[..., 0] * 255 - as_uint8).max() <= 0.51
    # Image i moves the same way whatever follows it (one row of random draws per image).
    assert np.array_equal(move_digits(x[:10], seed=5), as_uint8[:10])


def test_move_digits_rejects_other_shapes():
    with pytest.raises(ValueError, match="expects images of shape"):
        move_digits(np.zeros((28, 28)), seed=0)
    with pytest.raises(ValueError, match="expects images of shape"):
        move_digits(np.zeros((2, 28, 28, 3)), seed=0)
