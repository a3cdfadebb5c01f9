"""Checks for an assignment without a check module of its own: every check comes from the configuration.

An architecture check is the function of its id in ``autograder.model_checks.ARCHITECTURE`` (the one the
student's check runs too); a check with thresholds scores the dataset's metric on its hidden test set.
A check that is neither needs a check module of its own (``autograder/checks/test_<assignment>.py``):
``autograder release`` says so before any student sees the assignment.
"""

import pytest

from autograder.checks.common import score_metric
from autograder.checks.plugin import GradingPlugin
from autograder.model_checks import ARCHITECTURE


def _assignment(config):
    plugin = next(p for p in config.pluginmanager.get_plugins() if isinstance(p, GradingPlugin))
    return plugin.assignment_of_run


def pytest_generate_tests(metafunc):
    a = _assignment(metafunc.config)
    if metafunc.function is test_architecture:
        ids = [c.id for c in a.checks if c.id in ARCHITECTURE]
    else:
        scored = {check_id for thresholds in a.thresholds.values() for check_id in thresholds}
        ids = [c.id for c in a.checks if c.id in scored]
    metafunc.parametrize("check", [pytest.param(i, marks=pytest.mark.check(i), id=i) for i in ids])


def test_architecture(check, model, assignment):
    ARCHITECTURE[check](model, assignment)


def test_metric(check, measured, metric_title, threshold, score, advice):
    score_metric(f"{metric_title} on the hidden test set", measured, threshold, score, advice)
