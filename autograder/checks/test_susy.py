"""Checks for susy: three models of the requested families, scored by ROC AUC on hidden events."""

import pytest

import course_config
from autograder.checks.common import NONLINEAR_EXCLUDED, roc_auc, score_metric


@pytest.mark.check("logreg_family")
def test_logreg_model_is_a_logistic_regression(model):
    assert model.final_estimator in course_config.SUSY_LOGREG, (
        f"susy_logreg.skops must hold a LogisticRegression (alone or as the last step of a Pipeline); "
        f"found {model.summary()}"
    )


@pytest.mark.check("trees_family")
def test_trees_model_is_a_tree_ensemble(model):
    assert model.final_estimator in course_config.SUSY_TREES, (
        f"susy_trees.skops must hold one of {', '.join(course_config.SUSY_TREES)}; found {model.summary()}"
    )


@pytest.mark.check("dnn_family")
def test_dnn_is_a_fully_connected_network_with_probability_output(model):
    other = sorted({t for t in model.layer_types() if t not in course_config.SUSY_DNN_LAYERS})
    assert not other, f"the deep network may use only {', '.join(course_config.SUSY_DNN_LAYERS[1:])} layers; found {', '.join(other)}"
    dense = [layer for layer in model.layers if layer.class_name == "Dense"]
    assert any(layer.activation not in NONLINEAR_EXCLUDED for layer in dense[:-1]), (
        f"the network needs hidden Dense layers with a nonlinear activation; found {model.summary()}"
    )
    out = dense[-1] if dense else None
    ok = out is not None and (
        (out.config.get("units") == 1 and out.activation == "sigmoid")
        or (out.config.get("units") == 2 and out.activation == "softmax")
    )
    assert ok, (
        "the output layer must give the signal probability: Dense(1, sigmoid) (or Dense(2, softmax)); "
        f"found {out.describe() if out else 'no Dense layer'}"
    )


@pytest.mark.check("logreg_auc")
def test_logreg_roc_auc(predictions, labels, threshold, score):
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)


@pytest.mark.check("trees_auc")
def test_trees_roc_auc(predictions, labels, threshold, score):
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)


@pytest.mark.check("dnn_auc")
def test_dnn_roc_auc(predictions, labels, threshold, score):
    score_metric("ROC AUC", roc_auc(predictions, labels), threshold, score)
