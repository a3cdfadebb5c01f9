"""Tiered credit, and the checks every MNIST assignment has.

The ``test_*`` functions at the end are imported by the assignments' check modules, which pytest
then collects as their own. The architecture checks themselves are plain functions in
:mod:`autograder.course_check` (``ARCHITECTURE``), which students run before they hand in; the metrics
are the dataset's (``autograder.model_checks.measure``).
"""

from __future__ import annotations

import pytest

from autograder.model_checks import ARCHITECTURE


def score_metric(name: str, value: float, threshold, score, advice: str) -> None:
    """Record tiered credit for ``value`` and fail the check below full credit, saying what to do (``advice``)."""
    fraction = threshold.fraction(value)
    tiers = ", ".join(f"{t.fraction:.0%} of the points at {threshold.comparison} {t.minimum:.4f}"
                      for t in threshold.best_first())
    message = f"{name} {value:.4f} ({tiers})"
    score.set(fraction, message)
    # The tiers are in the recorded message already: the failure says only what fell short.
    short = "above" if threshold.lower_is_better else "below"
    assert fraction == 1.0, (
        f"{name} {value:.4f} is {short} {threshold.full_credit:.4f} needed for full credit: {advice} (the notebook's "
        "check before handing in shows the validation figure)"
    )


# -- checks shared by every MNIST assignment (imported into the check modules) ------------------
@pytest.mark.check("output_layer")
def test_output_layer_is_dense_10_softmax(model, assignment):
    ARCHITECTURE["output_layer"](model, assignment)


@pytest.mark.check("param_budget")
def test_parameter_count_within_budget(model, assignment):
    ARCHITECTURE["param_budget"](model, assignment)


@pytest.mark.check("test_accuracy")
def test_accuracy_on_mnist_test_set(measured, threshold, score, advice):
    score_metric("test accuracy", measured, threshold, score, advice)
