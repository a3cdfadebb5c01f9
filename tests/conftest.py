"""Shared fixtures: real MNIST, small real Keras models, and a course layout to grade."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import course_config  # noqa: E402
from autograder.course_data import DataError, load_mnist  # noqa: E402

COURSE_DIR = course_config.COURSE_DIR


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST as ``(x_train, y_train), (x_test, y_test)``; the suite needs it (see README: data)."""
    try:
        return load_mnist(download=False)
    except DataError as exc:
        pytest.skip(f"MNIST not available here; set COURSE_DATA_DIR ({exc})")


def train_dense(mnist, *, softmax=True, hidden=64, samples=6000, epochs=2, input_shape=(28, 28), extra=()):
    """A small real dense model trained on a slice of MNIST (a few seconds on 2 cores)."""
    import keras

    (x_train, y_train), _ = mnist
    keras.utils.set_random_seed(0)
    x = x_train[:samples].astype("float32") / 255.0
    x = x.reshape((len(x),) + tuple(input_shape))
    layers = [keras.Input(shape=input_shape)]
    if len(input_shape) > 1:
        layers.append(keras.layers.Flatten())
    layers += [keras.layers.Dense(hidden, activation="relu"), *extra]
    layers.append(keras.layers.Dense(10, activation="softmax" if softmax else None))
    model = keras.Sequential(layers)
    loss = "sparse_categorical_crossentropy" if softmax else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(x, y_train[:samples], epochs=epochs, batch_size=128, verbose=0)
    return model


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


def cnn_variants():
    """Small CNNs, right and wrong in one way each, for the mnist_cnn and mnist_augment checks."""
    import keras
    from keras import layers

    def cnn(*, pooling=True, augment=(), flatten=True):
        body = [keras.Input(shape=(28, 28, 1)), *augment, layers.Conv2D(8, 3, activation="relu")]
        body += [layers.MaxPooling2D()] if pooling else []
        body += [layers.Conv2D(16, 3, activation="relu")]
        body += [layers.MaxPooling2D()] if pooling else []
        body += [layers.Flatten()] if flatten else []
        body += [layers.Dense(10, activation="softmax")]
        return keras.Sequential(body)

    augmentation = lambda: [layers.RandomRotation(0.05), layers.RandomTranslation(0.1, 0.1), layers.RandomZoom(0.1)]  # noqa: E731
    return {
        "cnn": cnn(),
        "cnn_no_pooling": cnn(pooling=False),
        "cnn_augment": cnn(augment=augmentation()),
        "cnn_augment_flip": cnn(augment=augmentation() + [layers.RandomFlip("horizontal")]),
    }


def train_cnn(mnist, model, samples=6000):
    (x_train, y_train), _ = mnist
    x = (x_train[:samples].astype("float32") / 255.0)[..., None]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y_train[:samples], epochs=1, batch_size=128, verbose=0)
    return model


def make_submission(root: Path, student: str, assignment: str, files: dict[str, Path | bytes | str]) -> Path:
    """Create ``root/<student>/<assignment>/`` (nbgrader's submitted layout) with ``files``."""
    folder = root / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copyfile(content, folder / name)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    return folder


@pytest.fixture
def rng():
    return np.random.default_rng(0)
