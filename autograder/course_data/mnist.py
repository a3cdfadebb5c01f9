"""MNIST: where it is looked for, how it is checked, and the moved digits.

MNIST is looked for, in this order:

1. ``$COURSE_DATA_DIR/mnist.npz`` (the course's data folder; the grader's sandbox uses this too),
2. the Keras cache, ``~/.keras/datasets/mnist.npz`` (where ``keras.datasets.mnist`` keeps it),
3. a download of Keras' copy into that cache, with a progress bar.

Files are checked by what they contain (array shapes, dtypes, label counts and a SHA-256 of each
array), not by their bytes, so any pixel-exact copy of MNIST is accepted.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .common import DATA_DIR_ENV, DataError, _download, _sha256, first_readable, keras_cache_dir

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


def mnist_candidates() -> list[tuple[str, Path]]:
    """Where MNIST is looked for, in order, as (description, path) pairs."""
    places = []
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        places.append((f"${DATA_DIR_ENV}", Path(data_dir) / MNIST_FILE))
    places.append(("Keras cache", keras_cache_dir() / MNIST_FILE))
    return places


def read_mnist_file(path: str | os.PathLike, parts: tuple[str, ...] = ("train", "test")) -> dict[str, np.ndarray]:
    """Read and validate one ``mnist.npz`` (only the arrays of ``parts``: "train", "test"); raise DataError
    saying exactly what is wrong."""
    path = Path(path)
    wanted = [key for key in MNIST_ARRAYS if key.split("_", 1)[1] in parts]
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = list(npz.files)
            arrays = {key: npz[key] for key in wanted if key in found}  # an .npz reads each array on demand
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    for key in wanted:
        shape, dtype, digest = MNIST_ARRAYS[key]
        if key not in arrays:
            if key in MNIST_OPTIONAL:
                continue
            raise DataError(f"{path}: array {key!r} is missing (found {sorted(found)})")
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


def load_mnist(path: str | os.PathLike | None = None, *, download: bool = True, parts: tuple[str, ...] = ("train", "test")):
    """Return MNIST as ``(x_train, y_train), (x_test, y_test)``, uint8 arrays in Keras' layout.

    ``y_test`` is ``None`` when the file has no test labels: inside the grader's sandbox the test
    labels stay with the grader, so evaluate on a validation split that you hold out yourself.
    ``parts=("test",)`` reads (and checks) the test arrays only; the others are then ``None``.
    """
    if path is not None:
        arrays = read_mnist_file(path, parts)
    else:
        _, arrays, tried = first_readable(mnist_candidates(), lambda candidate: read_mnist_file(candidate, parts),
                                          warn="skipping invalid MNIST file")
        if arrays is None and download:
            target = keras_cache_dir() / MNIST_FILE
            try:
                _download(MNIST_URL, target)
                arrays = read_mnist_file(target, parts)
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
    return (arrays.get("x_train"), arrays.get("y_train")), (arrays.get("x_test"), arrays.get("y_test"))


def mnist_validation(rows: int, scale: float):
    """The validation split the MNIST notebooks hold out: the last ``rows`` training images divided by
    ``scale`` (float32; 255 gives [0, 1]) and their labels. Read without downloading anything: raises
    DataError where no copy of MNIST is here."""
    (x_train, y_train), _ = load_mnist(download=False, parts=("train",))
    return x_train[-rows:].astype("float32") / scale, y_train[-rows:]


# ---------------------------------------------------------------------------------------------
# Moved digits: MNIST images rotated, shifted and zoomed the way handwriting varies from writer to
# writer. The grader scores mnist_augment models on the test digits moved with a seed of its own;
# notebooks move their validation digits with the same function to show what augmentation buys.

MOVE_ROTATION_DEG = 15.0  # each image turned by an angle drawn uniformly from +-15 degrees
MOVE_SHIFT_PX = 3.0  # moved by up to 3 pixels along each axis (uniform, sub-pixel)
MOVE_ZOOM = 0.15  # scaled by a factor drawn uniformly from [0.85, 1.15]


def move_digits(images, seed: int, *, rotation_deg: float = MOVE_ROTATION_DEG, shift_px: float = MOVE_SHIFT_PX,
                zoom: float = MOVE_ZOOM) -> np.ndarray:
    """Each image rotated, shifted and zoomed at random about its centre: the same ``seed``, the same images.

    ``images`` has the shape ``(N, H, W)`` or ``(N, H, W, 1)``, any dtype (uint8 0-255 or float in
    [0, 1], say); the result has the same shape and dtype. Every image gets its own angle, shift and
    zoom, drawn uniformly within the limits; pixels are interpolated bilinearly, and what moves in
    from outside the image is blank (0).
    """
    images = np.asarray(images)
    squeeze = images.ndim == 4 and images.shape[-1] == 1
    if not (images.ndim == 3 or squeeze):
        raise ValueError(f"move_digits expects images of shape (N, H, W) or (N, H, W, 1), not {images.shape}")
    x = images[..., 0] if squeeze else images
    n, h, w = x.shape
    # One row of draws per image, so image i moves the same way whatever follows it.
    draws = np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 4))
    angle = np.deg2rad(rotation_deg) * draws[:, 0]
    scale = 1.0 + zoom * draws[:, 1]
    shift = (shift_px * draws[:, 2:]).astype(np.float32)
    # For every output pixel, the point of the input it shows: undo the shift, the rotation and
    # the zoom about the image centre.
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    dy = rows[None] - cy - shift[:, 0, None, None]
    dx = cols[None] - cx - shift[:, 1, None, None]
    cos = (np.cos(angle) / scale).astype(np.float32)[:, None, None]
    sin = (np.sin(angle) / scale).astype(np.float32)[:, None, None]
    src_y = cos * dy - sin * dx + cy
    src_x = sin * dy + cos * dx + cx
    y0, x0 = np.floor(src_y).astype(np.int64), np.floor(src_x).astype(np.int64)
    fy, fx = (src_y - y0).astype(np.float32), (src_x - x0).astype(np.float32)
    flat = x.reshape(n, h * w).astype(np.float32)
    index = np.arange(n)[:, None, None]
    out = np.zeros((n, h, w), np.float32)
    for oy, ox, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yy, xx = y0 + oy, x0 + ox
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        values = flat[index, np.clip(yy, 0, h - 1) * w + np.clip(xx, 0, w - 1)]
        out += np.where(inside, values, 0.0) * weight
    if np.issubdtype(images.dtype, np.integer):
        info = np.iinfo(images.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(images.dtype)
    return out[..., None] if squeeze else out
