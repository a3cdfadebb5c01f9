"""Checks for susy: three models of the requested families, scored by ROC AUC on hidden events."""

import pytest

from autograder.checks.common import score_metric
from autograder.model_checks import ARCHITECTURE, scored_family


@pytest.mark.check("logreg_family")
def test_logreg_model_is_a_logistic_regression(model, assignment):
    ARCHITECTURE["logreg_family"](model, assignment)


@pytest.mark.check("trees_family")
def test_trees_model_is_a_tree_ensemble(model, assignment):
    ARCHITECTURE["trees_family"](model, assignment)


@pytest.mark.check("dnn_family")
def test_dnn_is_a_fully_connected_network_with_probability_output(model, assignment):
    ARCHITECTURE["dnn_family"](model, assignment)


@pytest.mark.check("logreg_auc")
def test_logreg_roc_auc(model, assignment, measured, threshold, score, advice):
    scored_family(model, assignment, "logreg")
    score_metric("ROC AUC", measured, threshold, score, advice)


@pytest.mark.check("trees_auc")
def test_trees_roc_auc(model, assignment, measured, threshold, score, advice):
    scored_family(model, assignment, "trees")
    score_metric("ROC AUC", measured, threshold, score, advice)


@pytest.mark.check("dnn_auc")
def test_dnn_roc_auc(measured, threshold, score, advice):
    score_metric("ROC AUC", measured, threshold, score, advice)
