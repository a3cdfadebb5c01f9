"""The grader's data of the dataset an assignment names: the kit's own, or one described in the configuration.

:func:`task_class` is the one place that goes from an assignment (or a dataset's name) to the module
that holds its data: ``autograder.config.BUILT_IN_DATASETS`` for the kit's own, :mod:`autograder.datasets.described`
for a ``Dataset`` given in ``course_config.py``. An unknown name is an error, never a default.
"""

from __future__ import annotations

import importlib

import course_config
from autograder.config import BUILT_IN_DATASETS as BUILT_IN
from autograder.datasets.base import Task
from autograder.datasets.described import DescribedTask
from autograder.datasets.mnist import SCALE_PROBE_SET, MnistTask
from autograder.datasets.susy import REFERENCE_CURVES, ROC_POINTS, SusyTask, reference_curve, roc_points

__all__ = ["Task", "MnistTask", "SusyTask", "DescribedTask", "task_class", "load_task", "SCALE_PROBE_SET",
           "REFERENCE_CURVES", "ROC_POINTS", "reference_curve", "roc_points"]


def task_class(dataset: str | course_config.Assignment) -> type[Task]:
    """The grader's description of an assignment's dataset (or of the kit's dataset called ``dataset``)."""
    if isinstance(dataset, course_config.Assignment):
        if dataset.described is not None:
            return DescribedTask.of(dataset.described)
        dataset = dataset.dataset
    if dataset not in BUILT_IN:
        raise ValueError(f"unknown dataset {dataset!r}: the kit knows {', '.join(sorted(BUILT_IN))} "
                         "(autograder/datasets/); describe another with autograder.config.Dataset")
    module, _, name = BUILT_IN[dataset].partition(":")
    return getattr(importlib.import_module(module), name)


def load_task(assignment: course_config.Assignment, profile: course_config.Profile,
              test_sets: tuple[str, ...] | None = None) -> Task:
    """The test data ``assignment`` is graded on under ``profile`` (its checks' test sets, or ``test_sets``)."""
    test_sets = test_sets or assignment.test_sets
    if test_sets == ("test",):
        return task_class(assignment)(profile)
    return task_class(assignment)(profile, test_sets=test_sets)
