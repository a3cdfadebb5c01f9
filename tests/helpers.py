"""Test helpers: small real Keras models trained on slices of MNIST, and submission folders."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
import threading
import zipfile
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
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, folder / name)
        elif isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content)
    return folder


def susy_model_files(d: Path) -> Path:
    """Small real models of each family (and wrong ones), trained on simulated events."""
    import keras
    import skops.io as sio
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from autograder.datasets.susy_sim import simulate

    X, y = simulate(5000, seed=11)
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    trees = HistGradientBoostingClassifier(max_iter=30).fit(X, y)
    sio.dump(logreg, d / "logreg.skops")
    sio.dump(trees, d / "trees.skops")
    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(X)
    dnn = keras.Sequential([keras.Input((18,)), norm, keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dense(1, activation="sigmoid")])
    dnn.compile(optimizer="adam", loss="binary_crossentropy")
    dnn.fit(X, y, epochs=2, batch_size=256, verbose=0)
    dnn.save(d / "dnn.keras")
    linear = keras.Sequential([keras.Input((18,)), keras.layers.Dense(1)])
    linear.save(d / "linear.keras")
    (d / "pickled.skops").write_bytes(pickle.dumps(logreg))
    # A skops file whose schema names a class from outside scikit-learn.
    with zipfile.ZipFile(d / "logreg.skops") as src, zipfile.ZipFile(d / "foreign.skops", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["content"]["content"]["evil"] = {"__class__": "system", "__module__": "os", "__loader__": "ObjectNode"}
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    return d


def grader_footprint() -> dict[str, list[str]]:
    """What graders hold on this machine: scratch folders, their tmpfs mounts, job control groups.

    Each name carries the pid of the grader process that made it (see autograder.sandbox and
    autograder.cgroups), so :func:`assert_given_back` judges only this test's grader, whatever else the
    machine runs (another grader, another test killing one, a process writing and deleting files).
    """
    from autograder import sandbox
    from autograder.sandbox import cgroups

    tmp = Path(tempfile.gettempdir())
    footprint = {
        "scratch folders": sorted(p.name for p in tmp.glob(f"{sandbox.SCRATCH_PREFIX}*")),
        "scratch mounts": sorted(Path(line.split()[4]).name for line in Path("/proc/self/mountinfo").read_text().splitlines()
                                 if Path(line.split()[4]).name.startswith(sandbox.SCRATCH_PREFIX)),
        "job cgroups": [],
    }
    s = cgroups.support()
    for parent in {p for p in (s.memory, s.pids, s.cpuacct) if p is not None}:
        try:
            footprint["job cgroups"] += sorted(f"{parent}/{p.name}" for p in parent.iterdir()
                                               if p.name.startswith(cgroups.PREFIX))
        except OSError:
            pass
    return footprint


def _owner(name: str) -> int | None:
    from autograder import sandbox
    from autograder.sandbox import cgroups

    base = Path(name).name
    for prefix in (sandbox.SCRATCH_PREFIX, cgroups.PREFIX):
        if base.startswith(prefix):
            owner = base[len(prefix):].split("-")[0]
            return int(owner) if owner.isdigit() else None
    return None


class Descendants:
    """The processes this one starts (at any depth) while the ``with`` block runs, seen every 0.1 s: the grader's
    worker processes, which may be gone by the time their leftovers are looked for."""

    def __init__(self):
        self.pids: set[int] = {os.getpid()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        import psutil

        me = psutil.Process()
        while True:
            try:
                self.pids.update(p.pid for p in me.children(recursive=True))
            except psutil.Error:
                pass
            if self._stop.wait(0.1):
                return

    def __enter__(self) -> Descendants:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def assert_given_back(before: dict, after: dict, owners: set[int] | None = None) -> None:
    """Everything this process's grading made is gone: scratch folders unmounted and removed (their tmpfs pages
    freed), job control groups removed. ``owners``: the grading's processes (default: this one; a
    :class:`Descendants` watch gives its workers too, dead or alive). What other processes hold is theirs."""
    owners = owners or {os.getpid()}
    for kind in before:
        left = [n for n in sorted(set(after[kind]) - set(before[kind])) if _owner(n) in owners | {None}]
        assert not left, f"{kind} not given back: {left}"


def train_on_test_set(mnist, path: Path) -> Path:
    """A forged mnist_dense model: a fully connected network fitted to the public test set itself (~99.9 %)."""
    import keras

    (_, _), (x_test, y_test) = mnist
    keras.utils.set_random_seed(0)
    cheat = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    cheat.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    cheat.fit(x_test.astype("float32") / 255.0, y_test, epochs=25, batch_size=128, verbose=0)
    cheat.save(path)
    return path
