"""Test helpers: small real Keras models trained on slices of MNIST, and submission folders."""

from __future__ import annotations

import shutil
from pathlib import Path


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
