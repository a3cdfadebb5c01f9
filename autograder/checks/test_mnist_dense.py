"""Checks for mnist_dense: a fully connected network on MNIST."""

import pytest

from autograder.checks.common import (  # noqa: F401 - shared checks, collected here too
    ACTIVATION_LAYERS,
    NONLINEAR_EXCLUDED,
    hidden_dense_activations,
    test_accuracy_on_mnist_test_set,
    test_output_layer_is_dense_10_softmax,
    test_parameter_count_within_budget,
)


@pytest.mark.check("layer_types")
def test_only_dense_flatten_dropout_layers(model, assignment):
    allowed = (*assignment.allowed_layers, *ACTIVATION_LAYERS)
    other = sorted({t for t in model.layer_types() if t not in allowed})
    assert not other, (
        f"a fully connected network uses only {', '.join(assignment.allowed_layers[1:])} layers (and activation "
        f"layers such as ReLU); found {', '.join(other)}"
    )


@pytest.mark.check("hidden_layer")
def test_has_hidden_dense_layer(model):
    hidden = [act for act in hidden_dense_activations(model) if act not in NONLINEAR_EXCLUDED]
    assert hidden, (
        "the network needs at least one hidden Dense layer with a nonlinear activation (e.g. relu) "
        f"before the output layer; found {model.summary() or 'no layers'}"
    )
