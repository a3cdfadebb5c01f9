"""Check logic shared by several assignments; the test modules call these with their own facts."""

from __future__ import annotations

import numpy as np

NONLINEAR_EXCLUDED = {None, "linear", "softmax"}


def effective_output(model) -> tuple[object, str | None]:
    """The model's last weighted layer and the activation that ends the network.

    A ``Dense(10)`` followed by ``Activation("softmax")`` or ``Softmax()`` counts as
    ``Dense(10, softmax)``.
    """
    layers = [layer for layer in model.layers if layer.class_name != "InputLayer"]
    if not layers:
        return None, None
    last = layers[-1]
    if last.class_name in ("Activation", "Softmax") and len(layers) >= 2:
        act = "softmax" if last.class_name == "Softmax" else last.activation
        return layers[-2], act
    return last, last.activation


def assert_output_layer_dense_softmax(model, n_classes: int = 10) -> None:
    layer, activation = effective_output(model)
    assert layer is not None, "the model has no layers"
    got = layer.describe() if layer.class_name != "Dense" else f"Dense({layer.config.get('units')}, {activation})"
    assert layer.class_name == "Dense" and layer.config.get("units") == n_classes and activation == "softmax", (
        f"output layer must be Dense({n_classes}, softmax) so that the model outputs class probabilities; "
        f"found {got}"
    )


def assert_param_budget(model, max_params: int) -> None:
    assert model.n_params <= max_params, (
        f"the model has {model.n_params:,} parameters; the budget is {max_params:,}. "
        "Use fewer or narrower layers."
    )


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest output is the true label."""
    return float(np.mean(np.argmax(predictions, axis=1) == labels))


def score_metric(name: str, value: float, threshold, score) -> None:
    """Record tiered credit for ``value`` and fail the check below full credit."""
    fraction = threshold.fraction(value)
    tiers = ", ".join(
        f"{t.fraction:.0%} of the points at >= {t.minimum:.4f}" for t in sorted(threshold.tiers, key=lambda t: -t.minimum)
    )
    message = f"{name} {value:.4f} ({tiers})"
    score.set(fraction, message)
    assert fraction == 1.0, f"{name} {value:.4f} is below {threshold.full_credit:.4f} needed for full credit ({tiers})"
