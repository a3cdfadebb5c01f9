"""Load the course data sets, validated by content, from the first place that has them.

This file is standalone on purpose: `autograder release` copies it next to every assignment
notebook (as ``course_data.py``), so a student's notebook imports it unchanged on Colab, on a
laptop, and inside the grader's sandbox. It needs only numpy (and tqdm, if installed, for the
download progress bar). Do not edit the copies under source/, release/ or solutions/: edit
``autograder/course_data.py`` and run ``autograder release``.

MNIST is looked for, in this order:

1. ``$COURSE_DATA_DIR/mnist.npz`` (the course's data folder; the grader's sandbox uses this too),
2. the Keras cache, ``~/.keras/datasets/mnist.npz`` (where ``keras.datasets.mnist`` keeps it),
3. a download of Keras' copy into that cache, with a progress bar.

Files are checked by what they contain (array shapes, dtypes, label counts and a SHA-256 of each
array), not by their bytes, so any pixel-exact copy of MNIST is accepted.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "COURSE_DATA_DIR"
MNIST_FILE = "mnist.npz"
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

# What real MNIST contains, array by array (Keras key layout).
MNIST_ARRAYS = {
    "x_train": ((60000, 28, 28), "uint8", "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757"),
    "y_train": ((60000,), "uint8", "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"),
    "x_test": ((10000, 28, 28), "uint8", "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161"),
    "y_test": ((10000,), "uint8", "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"),
}
MNIST_LABEL_COUNTS = {
    "y_train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "y_test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
# The grader's sandbox copy leaves out the test labels; every other array is required.
MNIST_OPTIONAL = ("y_test",)


class DataError(RuntimeError):
    """A data set could not be found, read or validated; the message says where and how to fix it."""


def keras_cache_dir() -> Path:
    """The folder where Keras caches downloaded data sets (``$KERAS_HOME/datasets``)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


def mnist_candidates() -> list[tuple[str, Path]]:
    """Where MNIST is looked for, in order, as (description, path) pairs."""
    places = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        places.append((f"${DATA_DIR_ENV}", Path(data_dir) / MNIST_FILE))
    places.append(("Keras cache", keras_cache_dir() / MNIST_FILE))
    return places


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def read_mnist_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate one ``mnist.npz``; raise DataError saying exactly what is wrong."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    for key, (shape, dtype, digest) in MNIST_ARRAYS.items():
        if key not in arrays:
            if key in MNIST_OPTIONAL:
                continue
            raise DataError(f"{path}: array {key!r} is missing (found {sorted(arrays)})")
        a = arrays[key]
        if a.shape != shape or a.dtype != np.dtype(dtype):
            raise DataError(f"{path}: {key} is {a.dtype}{list(a.shape)}, expected {dtype}{list(shape)}")
        if key in MNIST_LABEL_COUNTS:
            counts = tuple(int(c) for c in np.bincount(a, minlength=10))
            if counts != MNIST_LABEL_COUNTS[key]:
                raise DataError(f"{path}: {key} label counts {counts} are not MNIST's {MNIST_LABEL_COUNTS[key]}")
        if _sha256(a) != digest:
            raise DataError(f"{path}: {key} has MNIST's shape but different content (checksum mismatch)")
    return arrays


def _download(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` atomically, with a progress bar."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, os.fdopen(fd, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            try:
                from tqdm.auto import tqdm

                bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=f"Downloading {target.name}")
            except ImportError:  # pragma: no cover - tqdm is optional for students
                bar = None
            done = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
                elif total:
                    print(f"\rDownloading {target.name}: {100 * done // total:3d}%", end="", file=sys.stderr)
            if bar is not None:
                bar.close()
        shutil.move(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_mnist(path: str | os.PathLike | None = None, *, download: bool = True):
    """Return MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 arrays in Keras' layout.

    ``y_test`` is ``None`` when the file has no test labels: inside the grader's sandbox the test
    labels stay with the grader, so evaluate on a validation split that you hold out yourself.
    """
    if path is not None:
        arrays = read_mnist_file(path)
    else:
        arrays = None
        tried = []
        for where, candidate in mnist_candidates():
            if not candidate.exists():
                tried.append(f"  - {where}: {candidate} (not there)")
                continue
            try:
                arrays = read_mnist_file(candidate)
                break
            except DataError as exc:
                tried.append(f"  - {where}: {exc}")
                warnings.warn(f"skipping invalid MNIST file: {exc}", stacklevel=2)
        if arrays is None and download:
            target = keras_cache_dir() / MNIST_FILE
            try:
                _download(MNIST_URL, target)
                arrays = read_mnist_file(target)
            except DataError as exc:
                tried.append(f"  - download from {MNIST_URL}: {exc}")
            except Exception as exc:  # no network, HTTP error, disk full ...
                tried.append(f"  - download from {MNIST_URL}: {type(exc).__name__}: {exc}")
        if arrays is None:
            raise DataError(
                "MNIST was not found. Looked in:\n" + "\n".join(tried) + "\n"
                f"Fix: put a copy of mnist.npz in a folder and set {DATA_DIR_ENV} to that folder, "
                f"or download {MNIST_URL} to {keras_cache_dir() / MNIST_FILE}."
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays.get("y_test"))
