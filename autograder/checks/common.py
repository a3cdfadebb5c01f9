"""Check logic shared by several assignments, and the checks every MNIST assignment has.

The ``test_*`` functions at the end are imported by the assignments' check modules, which pytest
then collects as their own; the ``assert_*`` helpers are called with each assignment's facts.
"""

from __future__ import annotations

import numpy as np
import pytest

NONLINEAR_EXCLUDED = {None, "linear", "softmax"}
# Layers that pass values on unchanged when predicting: skipped when looking for the output layer.
PASS_THROUGH = ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
# Layers that apply an activation function to each value (allowed wherever Dense layers are).
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")


def effective_output(model) -> tuple[object, str | None]:
    """The model's last weighted layer and the activation that ends the network.

    A ``Dense(10)`` followed by ``Activation("softmax")`` or ``Softmax()`` counts as
    ``Dense(10, softmax)``.
    """
    indices = [i for i, layer in enumerate(model.layers) if layer.class_name != "InputLayer" and not layer.is_activation
               and layer.class_name not in PASS_THROUGH]
    if not indices:
        return None, None
    return model.layers[indices[-1]], model.effective_activation(indices[-1])


def hidden_dense_activations(model) -> list[str | None]:
    """The activation of each Dense layer but the last, as a network: ``Dense(256)`` followed by
    ``Activation("relu")`` or ``ReLU()`` is a relu layer."""
    dense = [i for i, layer in enumerate(model.layers) if layer.class_name == "Dense"]
    return [model.effective_activation(i) for i in dense[:-1]]


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


def roc_auc(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of signal scores against 0/1 labels."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, predictions))


def score_metric(name: str, value: float, threshold, score) -> None:
    """Record tiered credit for ``value`` and fail the check below full credit."""
    fraction = threshold.fraction(value)
    tiers = ", ".join(
        f"{t.fraction:.0%} of the points at >= {t.minimum:.4f}" for t in sorted(threshold.tiers, key=lambda t: -t.minimum)
    )
    message = f"{name} {value:.4f} ({tiers})"
    score.set(fraction, message)
    assert fraction == 1.0, f"{name} {value:.4f} is below {threshold.full_credit:.4f} needed for full credit ({tiers})"


POOLING = ("MaxPooling2D", "AveragePooling2D")
GLOBAL_POOLING = ("GlobalAveragePooling2D", "GlobalMaxPooling2D")
HEAD_ENTRY = ("Flatten",) + GLOBAL_POOLING


def assert_conv_layers(model, minimum: int) -> None:
    n = model.layer_types().count("Conv2D")
    assert n >= minimum, (
        f"a CNN needs at least {minimum} Conv2D layers to build features from local patterns; found {n} "
        f"({model.summary() or 'no layers'})"
    )


def assert_pooling(model) -> None:
    types = model.layer_types()
    assert any(t in POOLING for t in types), (
        "add at least one pooling layer (e.g. MaxPooling2D((2, 2))) after a convolution: pooling halves the "
        f"image size and makes features tolerant to small shifts; found {model.summary()}"
    )


def assert_flatten_head(model) -> None:
    """Between the last Conv2D and the first Dense there must be a Flatten or global pooling layer."""
    types = model.layer_types()
    convs = [i for i, t in enumerate(types) if t == "Conv2D"]
    denses = [i for i, t in enumerate(types) if t == "Dense"]
    assert convs and denses, f"expected convolutions followed by a Dense head; found {model.summary()}"
    between = types[convs[-1] + 1 : next((d for d in denses if d > convs[-1]), len(types))]
    assert any(t in HEAD_ENTRY for t in between), (
        "turn the feature maps into a vector before the Dense head with Flatten() or GlobalAveragePooling2D(); "
        f"found {model.summary()}"
    )


def assert_layers_present(model, required) -> None:
    missing = [name for name in required if name not in model.layer_types()]
    assert not missing, f"add {', '.join(missing)} to the model (found {model.summary()})"


def assert_layers_absent(model, forbidden, why: str) -> None:
    found = sorted({t for t in model.layer_types() if t in forbidden})
    assert not found, f"remove {', '.join(found)}: {why}"


# -- checks shared by every MNIST assignment (imported into the check modules) ------------------
@pytest.mark.check("output_layer")
def test_output_layer_is_dense_10_softmax(model):
    assert_output_layer_dense_softmax(model, 10)


@pytest.mark.check("param_budget")
def test_parameter_count_within_budget(model, assignment):
    assert_param_budget(model, assignment.max_params)


@pytest.mark.check("test_accuracy")
def test_accuracy_on_mnist_test_set(predictions, labels, threshold, score):
    score_metric("test accuracy", accuracy(predictions, labels), threshold, score)
