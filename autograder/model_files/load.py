"""Load a scikit-learn, XGBoost or LightGBM model file with its own library, safely, and score inputs with it.

The grader's prediction job (in the sandbox, where :func:`autograder.sandbox.run.install_job` puts this file
beside the job as ``_autograder_model_load.py``) and the student's check before hand-in (in the notebook) load
these files the same way, through this module: a skops file only with scikit-learn's types trusted (any other
type in it is refused before loading), an XGBoost or LightGBM file by the library's own parser of its
non-pickle format, which reads trees and no code. Standard library only at the top: a library is imported
when a file of its kind is loaded.
"""

from __future__ import annotations

import importlib

LIBRARIES = {"skops": "skops.io", "xgboost": "xgboost", "lightgbm": "lightgbm"}


def import_library(kind: str):
    """The library that loads files of ``kind`` ("skops", "xgboost" or "lightgbm"), imported."""
    if kind not in LIBRARIES:
        raise ValueError(f"unknown model kind {kind!r}")
    return importlib.import_module(LIBRARIES[kind])


def load_model(kind: str, path: str):
    """The model in ``path``, loaded by the library of ``kind``."""
    library = import_library(kind)
    if kind == "skops":
        untrusted = library.get_untrusted_types(file=path)
        refused = [t for t in untrusted if not t.startswith("sklearn.")]
        if refused:
            raise TypeError(f"refusing to load types from outside scikit-learn: {', '.join(refused)}")
        return library.load(path, trusted=untrusted)
    if kind == "xgboost":
        with open(path, "rb") as f:  # from bytes, XGBoost tells JSON from UBJSON by content (from a path, by name)
            return library.Booster(model_file=bytearray(f.read()))
    return library.Booster(model_file=str(path))


def scores(kind: str, model, inputs, threads: int = 0):
    """The model's outputs on ``inputs``: class probabilities (scikit-learn: ``predict_proba``, else its
    ``decision_function``), the probability of class 1 (XGBoost, LightGBM); ``threads`` > 0 bounds the threads."""
    import numpy as np

    if kind == "skops":
        return model.predict_proba(inputs) if hasattr(model, "predict_proba") else model.decision_function(inputs)
    if kind == "xgboost":
        import xgboost

        if threads:
            model.set_param({"nthread": threads})
        # The events' columns are in the order the course's data gives them; the names are the student's own.
        data = xgboost.DMatrix(np.asarray(inputs, dtype=np.float32), feature_names=model.feature_names,
                               nthread=threads or -1)
        return model.predict(data)
    if kind == "lightgbm":
        return model.predict(np.asarray(inputs, dtype=np.float32), **({"num_threads": threads} if threads else {}))
    raise ValueError(f"unknown model kind {kind!r}")
