"""Shared fixtures: real MNIST, small real Keras models, and a course layout to grade."""

from __future__ import annotations

import os

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


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, mnist):
    """Saved .keras files of several small real models, trained once per test session."""
    import keras

    d = tmp_path_factory.mktemp("models")
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
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(0)
