"""Checks for mnist_dense: a fully connected network on MNIST."""

import pytest

from autograder.checks.common import (
    NONLINEAR_EXCLUDED,
    accuracy,
    assert_output_layer_dense_softmax,
    assert_param_budget,
    score_metric,
)


@pytest.mark.check("layer_types")
def test_only_dense_flatten_dropout_layers(model, assignment):
    other = sorted({t for t in model.layer_types() if t not in assignment.allowed_layers})
    assert not other, (
        f"a fully connected network uses only {', '.join(assignment.allowed_layers[1:])} layers; "
        f"found {', '.join(other)}"
    )


@pytest.mark.check("hidden_layer")
def test_has_hidden_dense_layer(model):
    dense = [layer for layer in model.layers if layer.class_name == "Dense"]
    hidden = [layer for layer in dense[:-1] if layer.activation not in NONLINEAR_EXCLUDED]
    assert hidden, (
        "the network needs at least one hidden Dense layer with a nonlinear activation (e.g. relu) "
        f"before the output layer; found {model.summary() or 'no layers'}"
    )


@pytest.mark.check("output_layer")
def test_output_layer_is_dense_10_softmax(model):
    assert_output_layer_dense_softmax(model, 10)


@pytest.mark.check("param_budget")
def test_parameter_count_within_budget(model, assignment):
    assert_param_budget(model, assignment.max_params)


@pytest.mark.check("test_accuracy")
def test_accuracy_on_mnist_test_set(predictions, labels, threshold, score):
    score_metric("test accuracy", accuracy(predictions, labels), threshold, score)
