"""Checks for susy: three models of the requested families, scored by ROC AUC on hidden events."""

import pytest

import course_config
from autograder.checks.common import score_metric
from autograder.course_check import ARCHITECTURE
from autograder.metrics import roc_auc


def assert_family(model, file: str, families: tuple[str, ...]) -> None:
    assert model.final_estimator in families, (
        f"{file} must hold {' or '.join(families)} (alone or as the last step of a Pipeline); found {model.summary()}"
    )


def assert_scored_family(model, file: str, families: tuple[str, ...]) -> None:
    """An AUC counts only for the requested kind of model: a stronger one under its name earns nothing."""
    assert model.final_estimator in families, (
        f"this AUC is scored only for {' or '.join(families)}; {file} holds {model.summary()}"
    )


@pytest.mark.check("logreg_family")
def test_logreg_model_is_a_logistic_regression(model):
    assert_family(model, "susy_logreg.skops", course_config.SUSY_LOGREG)


@pytest.mark.check("trees_family")
def test_trees_model_is_a_tree_ensemble(model):
    assert_family(model, "susy_trees.skops", course_config.SUSY_TREES)


@pytest.mark.check("dnn_family")
def test_dnn_is_a_fully_connected_network_with_probability_output(model, assignment):
    ARCHITECTURE["dnn_family"](model, assignment)


@pytest.mark.check("logreg_auc")
def test_logreg_roc_auc(model, predictions, labels, threshold, score):
    assert_scored_family(model, "susy_logreg.skops", course_config.SUSY_LOGREG)
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)


@pytest.mark.check("trees_auc")
def test_trees_roc_auc(model, predictions, labels, threshold, score):
    assert_scored_family(model, "susy_trees.skops", course_config.SUSY_TREES)
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)


@pytest.mark.check("dnn_auc")
def test_dnn_roc_auc(predictions, labels, threshold, score):
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)
