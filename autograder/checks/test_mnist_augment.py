"""Checks for mnist_augment: a CNN trained with random augmentation layers.

The CNN checks are those of mnist_cnn (imported, not copied); these add the augmentation ones.
"""

import pytest

from autograder.checks.common import score_metric
from autograder.checks.test_mnist_cnn import (  # noqa: F401 - collected as this assignment's checks too
    test_accuracy_on_mnist_test_set,
    test_at_least_two_conv2d_layers,
    test_flatten_or_global_pooling_before_dense_head,
    test_has_a_pooling_layer,
    test_output_layer_is_dense_10_softmax,
    test_parameter_count_within_budget,
)
from autograder.model_checks import ARCHITECTURE


@pytest.mark.check("augmentation_layers")
def test_random_augmentation_layers_in_model(model, assignment):
    ARCHITECTURE["augmentation_layers"](model, assignment)


@pytest.mark.check("no_flip")
def test_no_flip_layers(model, assignment):
    ARCHITECTURE["no_flip"](model, assignment)


@pytest.mark.check("moved_accuracy")
def test_accuracy_on_moved_test_digits(measured, threshold, score, advice):
    score_metric("accuracy on the moved test digits", measured, threshold, score, advice)
