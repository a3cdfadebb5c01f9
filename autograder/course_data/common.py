"""What the course's data loaders share: the data folder's variable, the error they raise, the Keras
cache, a checksum of an array, and downloads with a progress bar."""

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


class DataError(RuntimeError):
    """A data set could not be found, read or validated; the message says where and how to fix it."""


def keras_cache_dir() -> Path:
    """The folder where Keras caches downloaded data sets (``$KERAS_HOME/datasets``)."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


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


def first_readable(candidates, read, warn: str | None = None):
    """The first ``(where, path)`` candidate that ``read(path)`` accepts (it raises DataError otherwise):
    ``(path, what read returned, tried)``, or ``(None, None, tried)``; ``tried`` has a line per candidate passed
    over, saying why. ``warn``: each unusable file is also said as a warning that starts so (e.g. "skipping
    invalid MNIST file"), pointing at the loader's caller."""
    tried = []
    for where, path in candidates:
        if not path.exists():
            tried.append(f"  - {where}: {path} (not there)")
            continue
        try:
            return path, read(path), tried
        except DataError as exc:
            tried.append(f"  - {where}: {exc}")
            if warn:
                warnings.warn(f"{warn}: {exc}", stacklevel=3)
    return None, None, tried


def _progress(total, desc):
    """A progress callback: call with a byte count, and with None at the end."""
    try:
        from tqdm.auto import tqdm

        bar = tqdm(total=total or None, unit="B", unit_scale=True, desc=desc)
    except ImportError:  # pragma: no cover - tqdm is optional for students
        bar = None
    done = [0]

    def update(n):
        if n is None:
            if bar is not None:
                bar.close()
            elif total:
                print(file=sys.stderr)
            return
        done[0] += n
        if bar is not None:
            bar.update(n)
        elif total:
            print(f"\r{desc}: {100 * done[0] // total:3d}%", end="", file=sys.stderr)

    return update
