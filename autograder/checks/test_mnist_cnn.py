"""Checks for mnist_cnn: a convolutional network on MNIST."""

import pytest

from autograder.checks.common import (  # noqa: F401 - shared checks, collected here too
    test_accuracy_on_mnist_test_set,
    test_output_layer_is_dense_10_softmax,
    test_parameter_count_within_budget,
)
from autograder.model_checks import ARCHITECTURE


@pytest.mark.check("conv_layers")
def test_at_least_two_conv2d_layers(model, assignment):
    ARCHITECTURE["conv_layers"](model, assignment)


@pytest.mark.check("pooling")
def test_has_a_pooling_layer(model, assignment):
    ARCHITECTURE["pooling"](model, assignment)


@pytest.mark.check("flatten_head")
def test_flatten_or_global_pooling_before_dense_head(model, assignment):
    ARCHITECTURE["flatten_head"](model, assignment)
