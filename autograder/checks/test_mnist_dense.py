"""Checks for mnist_dense: a fully connected network on MNIST."""

import pytest

from autograder.checks.common import (  # noqa: F401 - shared checks, collected here too
    test_accuracy_on_mnist_test_set,
    test_output_layer_is_dense_10_softmax,
    test_parameter_count_within_budget,
)
from autograder.model_checks import ARCHITECTURE


@pytest.mark.check("layer_types")
def test_only_dense_flatten_dropout_layers(model, assignment):
    ARCHITECTURE["layer_types"](model, assignment)


@pytest.mark.check("hidden_layer")
def test_has_hidden_dense_layer(model, assignment):
    ARCHITECTURE["hidden_layer"](model, assignment)
