"""course_config.py is consistent with the checks, the notebooks and itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

import course_config
from autograder.checks import check_module

NAMES = list(course_config.ASSIGNMENTS)


def test_importable_without_tensorflow():
    code = "import sys, course_config; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=course_config.COURSE_DIR)


def marked_checks(path):
    """Check ids of the tests pytest collects from a check module (imported tests included)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"checks_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ids = []
    for name, obj in vars(module).items():
        if name.startswith("test_") and callable(obj):
            ids += [m.args[0] for m in getattr(obj, "pytestmark", []) if m.name == "check"]
    return ids


@pytest.mark.parametrize("name", NAMES)
def test_each_configured_check_has_exactly_one_test(name):
    a = course_config.assignment(name)
    assert sorted(marked_checks(check_module(name))) == sorted(c.id for c in a.checks)
    assert all(c.points > 0 for c in a.checks)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("profile", list(course_config.PROFILES))
def test_thresholds_are_tiered_and_defined_for_every_profile(name, profile):
    a = course_config.assignment(name)
    assert profile in a.parameters, f"{name} has no parameters for profile {profile}"
    for check_id, threshold in a.thresholds[profile].items():
        a.check(check_id)
        fractions = [t.fraction for t in sorted(threshold.tiers, key=lambda t: -t.minimum)]
        assert fractions[0] == 1.0 and fractions == sorted(fractions, reverse=True)
        assert threshold.fraction(threshold.full_credit) == 1.0
        assert threshold.fraction(threshold.full_credit - 1e-9) < 1.0
        assert threshold.fraction(0.0) == 0.0
        assert threshold.source


def test_unknown_names_are_reported():
    with pytest.raises(ValueError, match="known: "):
        course_config.assignment("nope")
    with pytest.raises(ValueError, match="known: "):
        course_config.profile("nope")


@pytest.mark.parametrize("name", NAMES)
def test_test_sets_and_audit_gaps_name_metric_checks(name):
    """A check scored on another test set than "test" is a metric check the task can load; audits name metric checks."""
    from autograder.datasets.tasks import MnistTask

    a = course_config.assignment(name)
    for c in a.checks:
        if c.test_set != "test":
            assert a.dataset == "mnist" and c.test_set in MnistTask.TEST_SETS, (c.id, c.test_set)
            assert all(c.id in a.thresholds[p] for p in course_config.PROFILES), c.id
    for profile, gaps in a.audit_gaps.items():
        assert profile in course_config.PROFILES
        assert set(gaps) <= set(a.thresholds[profile]) and all(0 < g < 0.1 for g in gaps.values())


@pytest.mark.parametrize("name", ["mnist_dense", "mnist_cnn", "mnist_augment"])
def test_notebook_goal_is_the_full_profile_full_credit(name):
    """The goal a student reads at the top of the notebook is what earns full credit on a saved model."""
    import json
    import re

    a = course_config.assignment(name)
    nb = json.loads((course_config.COURSE_DIR / "source" / name / a.notebook).read_text())
    intro = "".join(nb["cells"][0]["source"])
    goal = re.search(r"\*\*Goal: (.*?)\*\*", intro, re.S).group(1)
    stated = [float(v) / 100 for v in re.findall(r"(\d+(?:\.\d+)?) %", goal)]
    wanted = [t.full_credit for t in a.thresholds["full"].values()]
    assert stated == pytest.approx(wanted, abs=1e-9), f"{name}: the notebook's goal says {goal!r}"


def test_an_unknown_dataset_is_an_error_not_a_default():
    """An assignment on a dataset the kit does not know is refused when the configuration is written, never graded
    by a guess (the metric of another dataset, another dataset's test data); so is a metric the kit does not know
    and a threshold that reads the metric the wrong way round."""
    import dataclasses

    with pytest.raises(ValueError, match="unknown dataset 'fashion_mnist': the kit knows mnist, susy; describe"):
        dataclasses.replace(course_config.MNIST_DENSE, dataset="fashion_mnist")
    with pytest.raises(ValueError, match="unknown metric 'f1': the kit knows accuracy, mean_absolute_error, roc_auc"):
        course_config.Dataset("fashion", "Fashion-MNIST", "keras.datasets.fashion_mnist:load_data", metric="f1")
    with pytest.raises(ValueError, match="is not installed here"):
        course_config.Metric("f1", "F1", "no_such_module.metrics:f1", "classes")
    error = course_config.Dataset("diabetes", "diabetes", "sklearn.datasets:load_diabetes", "mean_absolute_error")
    with pytest.raises(ValueError, match="lower_is_better=False, but mean absolute error is lower-is-better"):
        dataclasses.replace(course_config.MNIST_DENSE, dataset=error, described=None)
