"""A dataset described in the course's configuration (``autograder.config.Dataset``), loaded without code of its own.

``load_dataset(NAME)`` gives a notebook the rows of a described dataset, split as the grader splits
them: shuffled with the description's seed, the last ``test_share`` of the rows are the test set.
Inside the grader's sandbox it reads ``NAME.npz`` from the data folder (training rows and test inputs,
no test labels); elsewhere it calls the description's loader (e.g. ``sklearn.datasets:load_digits``,
offline). The notebook's helper cell carries the descriptions of its assignment (``datasets.json``,
written by ``autograder release``), so a notebook names its dataset and nothing else.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
from pathlib import Path

import numpy as np

from .common import DATA_DIR_ENV, DataError

DESCRIPTIONS = "datasets.json"  # beside this module in a notebook's helper zip: {name: description}


def description(name: str) -> dict:
    """The description of the dataset called ``name`` that this notebook's helpers carry."""
    try:
        known = json.loads(pkgutil.get_data(__package__, DESCRIPTIONS) or b"{}")
    except (OSError, ValueError):
        known = {}
    if name not in known:
        raise DataError(f"no dataset called {name!r} is described for this notebook (it has: "
                        f"{', '.join(sorted(known)) or 'none'}); run the helper cell at the top of the notebook")
    return known[name]


def split(n: int, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The row indices of the training and the test set: a seeded shuffle, the last ``test_share`` for testing."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_share)))
    return order[:-n_test], order[-n_test:]


def load_dataset(name_or_description, *, test_labels: bool = False):
    """``(x_train, y_train), (x_test, y_test)`` of a described dataset, as its loader gives them (not scaled).

    ``y_test`` is None unless ``test_labels`` (the grader's side): a notebook never needs it.
    """
    d = name_or_description if isinstance(name_or_description, dict) else description(name_or_description)
    folder = os.environ.get(DATA_DIR_ENV)
    saved = Path(folder) / f"{d['name']}.npz" if folder else None
    if not test_labels and saved is not None and saved.is_file():  # the grader's sandbox: no test labels there
        with np.load(saved, allow_pickle=False) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], None)
    module, _, function = d["loader"].partition(":")
    try:
        loaded = getattr(importlib.import_module(module), function)(**d.get("loader_args", {}))
    except (ImportError, AttributeError) as exc:
        raise DataError(f"the loader of {d['name']}, {d['loader']}, is not available here: {exc}") from None
    X, y = (loaded.data, loaded.target) if hasattr(loaded, "data") else loaded
    X, y = np.asarray(X), np.asarray(y)
    train, test = split(len(X), d["test_share"], d["split_seed"])
    return (X[train], y[train]), (X[test], y[test] if test_labels else None)


def dataset_validation(description: dict):
    """The validation split a notebook holds out of a described dataset: the last ``validation_share`` of the
    training rows, divided by the description's scale (as the grader scales its inputs)."""
    (x_train, y_train), _ = load_dataset(description)
    n_val = max(1, int(round(len(x_train) * description["validation_share"])))
    return (np.asarray(x_train[-n_val:], dtype=np.float32) / np.float32(description["scale"]), y_train[-n_val:])
