"""The metrics a threshold is set on, computed on the trusted side from a model's outputs and the labels."""

from __future__ import annotations

import numpy as np


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest output is the true label."""
    return float(np.mean(np.argmax(predictions, axis=1) == labels))


def roc_auc(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of signal scores against 0/1 labels."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, predictions))
