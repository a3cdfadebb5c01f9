"""Checks for mnist_cnn: a convolutional network on MNIST."""

import pytest

from autograder.checks.common import (
    accuracy,
    assert_conv_layers,
    assert_flatten_head,
    assert_output_layer_dense_softmax,
    assert_param_budget,
    assert_pooling,
    score_metric,
)


@pytest.mark.check("conv_layers")
def test_at_least_two_conv2d_layers(model, assignment):
    assert_conv_layers(model, assignment.min_conv_layers)


@pytest.mark.check("pooling")
def test_has_a_pooling_layer(model):
    assert_pooling(model)


@pytest.mark.check("flatten_head")
def test_flatten_or_global_pooling_before_dense_head(model):
    assert_flatten_head(model)


@pytest.mark.check("output_layer")
def test_output_layer_is_dense_10_softmax(model):
    assert_output_layer_dense_softmax(model, 10)


@pytest.mark.check("param_budget")
def test_parameter_count_within_budget(model, assignment):
    assert_param_budget(model, assignment.max_params)


@pytest.mark.check("test_accuracy")
def test_accuracy_on_mnist_test_set(predictions, labels, threshold, score):
    score_metric("test accuracy", accuracy(predictions, labels), threshold, score)
