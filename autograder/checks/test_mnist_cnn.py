"""Checks for mnist_cnn: a convolutional network on MNIST."""

import pytest

from autograder.checks.common import (  # noqa: F401 - shared checks, collected here too
    assert_conv_layers,
    assert_flatten_head,
    assert_pooling,
    test_accuracy_on_mnist_test_set,
    test_output_layer_is_dense_10_softmax,
    test_parameter_count_within_budget,
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
