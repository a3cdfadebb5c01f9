"""Shared fixtures: real MNIST, small real Keras models, and a course layout to grade.

The suite runs in parallel: pytest-xdist, one worker per core, each test module on one worker (``--dist
loadscope``, in collection order: a module's fixtures are built once). What that asks of a test:

- models trained for many tests are made once per run, not once per worker: :func:`shared_folder` builds them
  under a lock in the run's common temporary folder, and every worker reads the same files;
- a test judges only what its own grader used (tests.helpers.assert_given_back: scratch folders and control
  groups of its own processes), never the machine's, where another test may be grading or killing a grader;
- a server it starts listens on a free port of 127.0.0.1, never a fixed one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow's oneDNN kernels sum in an order that depends on the CPU's instruction set (AVX-512 BF16
# machines differ from others by ~3e-5 on a softmax); the tests compare the NumPy engine with Keras'
# plain kernels, the same on every machine.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from autograder.course_data import DataError, load_mnist  # noqa: E402
from tests.helpers import cnn_variants, train_cnn, train_dense  # noqa: E402


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST as ``(x_train, y_train), (x_test, y_test)``; the suite needs it (see README: data)."""
    try:
        return load_mnist(download=False)
    except DataError as exc:
        pytest.skip(f"MNIST not available here; set COURSE_DATA_DIR ({exc})")


@contextmanager
def _locked(path: Path):
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shared_folder(tmp_path_factory, name: str, build) -> Path:
    """A folder ``build(folder)`` fills once per test run, whichever worker asks first; the others wait for it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, common to every worker
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with _locked(root / f"shared-{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, mnist):
    """Saved .keras files of several small real models, trained once per test run."""
    return shared_folder(tmp_path_factory, "models", lambda d: _train_models(d, mnist))


@pytest.fixture(scope="session")
def good_dense(tmp_path_factory, mnist) -> Path:
    """A mnist_dense model good enough for points on the full profile (all 60,000 training images, 3 epochs)."""
    return shared_folder(tmp_path_factory, "good-dense", lambda d: train_dense(
        mnist, samples=60_000, epochs=3, hidden=128).save(d / "good_dense.keras")) / "good_dense.keras"


@pytest.fixture(scope="session")
def susy_models(tmp_path_factory):
    """Small real SUSY models of each family, and wrong ones (tests.helpers.susy_model_files), made once per run."""
    from tests.helpers import susy_model_files

    return shared_folder(tmp_path_factory, "susy-models", susy_model_files)


@pytest.fixture(scope="session")
def forged_model(tmp_path_factory, mnist) -> Path:
    """A forged mnist_dense model fitted to the public test set itself (~99.9 %), trained once per run."""
    from tests.helpers import train_on_test_set

    return shared_folder(tmp_path_factory, "forged", lambda d: train_on_test_set(mnist, d / "forged.keras")) / "forged.keras"


def _train_models(d: Path, mnist) -> None:
    import keras

    train_dense(mnist).save(d / "dense.keras")
    train_dense(mnist, softmax=False).save(d / "no_softmax.keras")
    train_dense(mnist, input_shape=(784,)).save(d / "flat_input.keras")
    conv = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    conv.save(d / "conv.keras")
    lam = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Lambda(lambda t: t * 2.0),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    lam.save(d / "lambda.keras", zipped=True)
    train_dense(mnist, samples=512, epochs=1).save(d / "legacy.h5")
    for name, model in cnn_variants().items():
        train_cnn(mnist, model).save(d / f"{name}.keras")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
