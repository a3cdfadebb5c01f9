"""Make tiny trained Keras model files the way students of many Keras versions do (runs in a producer venv).

Standalone: imports only numpy, h5py (through Keras) and the Keras / TensorFlow / JAX / torch that the
venv holds, never the autograder package. ``bench/model_files.py`` prepares the data folder, runs this
script with each producer venv's Python and then grades every file it wrote.

Data folder (``--data``), written by the bench::

    mnist_x_train.npy  uint8 (N, 28, 28)     mnist_y_train.npy  labels
    mnist_x_test.npy   uint8 (10000, 28, 28) (no labels)
    susy_x_train.npy   float32 (N, 18)       susy_y_train.npy   0/1 labels
    susy_x_test.npy    float32 (M, 18)       (no labels)

Output folder (``--out``): for every variant its model file(s) (``<variant>.keras``, some also
``<variant>.h5``), the model's own outputs on the test inputs (``<variant>.outputs.npy``, float32,
``model.predict(x, batch_size=500)``) and one JSON line per file, or per skipped variant, in
``manifest.jsonl``.

    python model_files_producer.py --data DIR --out DIR [--keras-module auto|keras|tf_keras|tf.keras]
                                   [--variants dense,cnn,...] [--n-train 6000] [--seed 1234]

Keras 3 picks its backend from ``KERAS_BACKEND`` as usual.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = (
    "dense", "dense_functional", "dense_nested", "dense_input_shape", "dense_activation_layers",
    "dense_relu_softmax_layers", "dense_tf_softmax", "dense_adam",
    "cnn", "cnn_same_bn_gap", "augment", "susy_dnn",
    "mixed_float16_dense", "mixed_float16_cnn", "mixed_float16_dense_f16out",
    "mixed_bfloat16_dense", "mixed_bfloat16_cnn", "mixed_bfloat16_dense_bf16out",
)
HIDDEN = 3  # hidden Dense units: a .keras file of about 30 KB (HDF5 overhead is about 20 KB of it)
H5_TWINS = ("dense", "cnn", "susy_dnn")  # variants also saved as .h5
ASSIGNMENT = {"cnn": "mnist_cnn", "cnn_same_bn_gap": "mnist_cnn", "augment": "mnist_augment", "susy_dnn": "susy",
              "mixed_float16_cnn": "mnist_cnn", "mixed_bfloat16_cnn": "mnist_cnn"}


class Skip(Exception):
    """A variant this producer cannot build; the message is recorded."""


def load_keras(module: str):
    """The Keras module (``keras``, ``tf_keras`` or ``tf.keras``) and its major version."""
    if module == "auto":
        module = "keras"
    if module == "tf.keras":
        import tensorflow as tf

        keras = tf.keras
    else:
        keras = importlib.import_module(module)
    version = getattr(keras, "__version__", None) or getattr(getattr(keras, "version", None), "__call__", lambda: "?")()
    return keras, module, str(version), int(str(version).split(".")[0])


def dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            continue
    return None


def versions(keras, module: str, keras_version: str, major: int) -> dict:
    backend = keras.backend.backend() if hasattr(keras.backend, "backend") else "tensorflow"
    return {
        "python": platform.python_version(),
        "keras_module": module,
        "keras": keras_version,
        "backend": backend,
        "tensorflow": dist_version("tensorflow", "tensorflow-cpu"),
        "tf_keras": dist_version("tf_keras", "tf-keras"),
        "jax": dist_version("jax"),
        "jaxlib": dist_version("jaxlib"),
        "torch": dist_version("torch"),
        "numpy": np.__version__,
        "h5py": dist_version("h5py"),
    }


class Producer:
    def __init__(self, keras, major: int, backend: str, data: Path, n_train: int, seed: int):
        self.keras, self.major, self.backend, self.seed = keras, major, backend, seed
        L = keras.layers
        self.L = L
        self.mx = np.load(data / "mnist_x_train.npy")[:n_train]
        self.my = np.load(data / "mnist_y_train.npy")[:n_train].astype("int64")
        self.mx_test = np.load(data / "mnist_x_test.npy")
        self.sx = np.load(data / "susy_x_train.npy").astype("float32")
        self.sy = np.load(data / "susy_y_train.npy").astype("float32")
        self.sx_test = np.load(data / "susy_x_test.npy").astype("float32")

    # -- helpers ------------------------------------------------------------------------------
    def tf(self):
        if self.backend != "tensorflow":
            raise Skip(f"needs TensorFlow activations; this producer's backend is {self.backend}")
        import tensorflow as tf

        return tf

    def inp(self, shape):
        return self.keras.Input(shape=shape)

    def set_policy(self, name: str) -> None:
        mp = self.keras.mixed_precision
        setter = getattr(mp, "set_global_policy", None) or getattr(mp, "set_dtype_policy")
        setter(name)

    def sgd(self):
        return self.keras.optimizers.SGD(learning_rate=0.1)

    def cnn_body(self):
        """Two conv blocks (the assignment asks for at least two conv layers), about 1,200 parameters."""
        L = self.L
        return [L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(4, 3, activation="relu"),
                L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")]

    # -- variants: each returns (model, input shape, optimizer) -------------------------------
    def build(self, variant: str):
        keras, L = self.keras, self.L
        if variant == "dense":
            return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN, activation="relu"),
                                     L.Dense(10, activation="softmax")]), (28, 28), self.sgd()
        if variant == "dense_adam":
            return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN, activation="relu"),
                                     L.Dense(10, activation="softmax")]), (28, 28), "adam"
        if variant == "dense_functional":
            x = inputs = self.inp((28, 28))
            x = L.Flatten()(x)
            x = L.Dense(HIDDEN, activation="relu")(x)
            outputs = L.Dense(10, activation="softmax")(x)
            return keras.Model(inputs, outputs), (28, 28), self.sgd()
        if variant == "dense_nested":
            inner = keras.Sequential([L.Flatten(), L.Dense(HIDDEN, activation="relu"), L.Dense(10, activation="softmax")])
            inputs = self.inp((28, 28))
            return keras.Model(inputs, inner(inputs)), (28, 28), self.sgd()
        if variant == "dense_input_shape":
            return keras.Sequential([L.Dense(HIDDEN, activation="relu", input_shape=(784,)),
                                     L.Dense(10, activation="softmax")]), (784,), self.sgd()
        if variant == "dense_activation_layers":
            return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN), L.Activation("relu"), L.Dense(10),
                                     L.Activation("softmax")]), (28, 28), self.sgd()
        if variant == "dense_relu_softmax_layers":
            return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN), L.ReLU(), L.Dense(10),
                                     L.Softmax()]), (28, 28), self.sgd()
        if variant == "dense_tf_softmax":
            tf = self.tf()
            return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN, activation=tf.nn.relu),
                                     L.Dense(10, activation=tf.nn.softmax)]), (28, 28), self.sgd()
        if variant == "cnn":
            return keras.Sequential([self.inp((28, 28, 1)), *self.cnn_body()]), (28, 28, 1), self.sgd()
        if variant == "cnn_same_bn_gap":
            return keras.Sequential([
                self.inp((28, 28, 1)), L.Conv2D(4, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                L.MaxPooling2D(), L.Conv2D(8, 3), L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax"),
            ]), (28, 28, 1), self.sgd()
        if variant == "augment":
            return keras.Sequential([
                self.inp((28, 28, 1)), L.RandomRotation(0.05), L.RandomTranslation(0.1, 0.1), L.RandomZoom(0.1),
                *self.cnn_body(),
            ]), (28, 28, 1), self.sgd()
        if variant == "susy_dnn":
            if self.major >= 3:
                norm = L.Normalization()
                layers = [self.inp((18,)), norm]
            else:
                norm = L.Normalization(input_shape=(18,))
                layers = [norm]
            norm.adapt(self.sx)
            return keras.Sequential([*layers, L.Dense(16, activation="relu"), L.Dense(1, activation="sigmoid")]), \
                (18,), "adam"
        if variant.startswith("mixed_"):
            _, policy, kind, *rest = variant.split("_")
            policy = "mixed_" + policy
            self.set_policy(policy)
            out_dtype = {} if rest else {"dtype": "float32"}
            if kind == "dense":
                return keras.Sequential([self.inp((28, 28)), L.Flatten(), L.Dense(HIDDEN, activation="relu"),
                                         L.Dense(10, activation="softmax", **out_dtype)]), (28, 28), self.sgd()
            body = self.cnn_body()[:-1]
            return keras.Sequential([self.inp((28, 28, 1)), *body, L.Dense(10, activation="softmax", **out_dtype)]), \
                (28, 28, 1), self.sgd()
        raise Skip(f"unknown variant {variant!r}")

    def produce(self, variant: str, out: Path) -> list[dict]:
        """Build, train, save and predict one variant; return its files' records."""
        keras = self.keras
        keras.utils.set_random_seed(self.seed)
        try:
            model, shape, optimizer = self.build(variant)
            assignment = ASSIGNMENT.get(variant, "mnist_dense")
            if assignment == "susy":
                x, y, x_test = self.sx, self.sy, self.sx_test
                model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
                batch = 128
            else:
                x = (self.mx.astype("float32") / 255).reshape((-1, *shape))
                y, x_test = self.my, (self.mx_test.astype("float32") / 255).reshape((-1, *shape))
                model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                batch = 64
            start = time.monotonic()
            model.fit(x, y, epochs=1, batch_size=batch, verbose=0)
            train_s = time.monotonic() - start
            start = time.monotonic()
            outputs = np.asarray(model.predict(x_test, batch_size=500, verbose=0)).astype("float32")
            predict_s = time.monotonic() - start
            np.save(out / f"{variant}.outputs.npy", outputs)
            files = [f"{variant}.keras"] + ([f"{variant}.h5"] if variant in H5_TWINS else [])
            records = []
            for name in files:
                try:
                    model.save(str(out / name))
                except Exception as exc:  # noqa: BLE001  (recorded: this producer cannot save it)
                    records.append({"variant": variant, "file": name, "status": "skipped",
                                    "reason": f"save failed: {type(exc).__name__}: {str(exc)[:300]}"})
                    continue
                records.append({
                    "variant": variant, "file": name, "status": "ok", "assignment": assignment,
                    "model": "dnn" if assignment == "susy" else "model", "input_shape": list(shape),
                    "outputs": f"{variant}.outputs.npy", "output_shape": list(outputs.shape),
                    "bytes": (out / name).stat().st_size, "train_s": round(train_s, 2),
                    "predict_s": round(predict_s, 3),
                })
            return records
        except Skip as exc:
            return [{"variant": variant, "status": "skipped", "reason": str(exc)}]
        except Exception as exc:  # noqa: BLE001
            tb = traceback.format_exc(limit=3)
            return [{"variant": variant, "status": "skipped",
                     "reason": f"{type(exc).__name__}: {str(exc)[:400]}", "traceback": tb[-1500:]}]
        finally:
            if variant.startswith("mixed_"):
                self.set_policy("float32")
            if hasattr(keras.backend, "clear_session"):
                keras.backend.clear_session()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with the bench's .npy files")
    parser.add_argument("--out", type=Path, required=True, help="folder for the model files and manifest.jsonl")
    parser.add_argument("--keras-module", default="auto", choices=("auto", "keras", "tf_keras", "tf.keras"))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all)")
    parser.add_argument("--n-train", type=int, default=6000, help="MNIST training images (1 epoch)")
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)

    keras, module, keras_version, major = load_keras(args.keras_module)
    info = versions(keras, module, keras_version, major)
    args.out.mkdir(parents=True, exist_ok=True)
    producer = Producer(keras, major, info["backend"], args.data, args.n_train, args.seed)
    manifest = args.out / "manifest.jsonl"
    with open(manifest, "w") as f:
        for variant in [v for v in args.variants.split(",") if v]:
            start = time.monotonic()
            for rec in producer.produce(variant, args.out):
                rec["versions"] = info
                f.write(json.dumps(rec) + "\n")
                f.flush()
                print(f"{variant:32s} {rec.get('file', '-'):36s} {rec['status']:8s} "
                      f"{time.monotonic() - start:6.1f} s {rec.get('reason', '')[:150]}", flush=True)
    (args.out / "done").write_text(json.dumps(info) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
