"""Pytest plugin that runs an assignment's checks against one prepared submission.

The grader prepares a :class:`~autograder.grading.submission.Submission` (architecture read from the model
file, predictions from the sandbox), then runs the assignment's check module with this plugin.
A check's outcome is its test's outcome: passed earns the points, failed earns none, unless the
test recorded a fraction through the ``score`` fixture (tiered thresholds). A grade never depends
on what a test prints or warns.
"""

from __future__ import annotations

import pytest

from autograder.results import CheckResult


class Score:
    """Lets a check award partial credit: ``score.set(fraction, message)``."""

    def __init__(self):
        self.fraction: float | None = None
        self.message: str = ""

    def set(self, fraction: float, message: str) -> None:
        self.fraction = max(0.0, min(1.0, float(fraction)))
        self.message = message


def check_id(item) -> str | None:
    marker = item.get_closest_marker("check")
    return marker.args[0] if marker and marker.args else None


def failure_message(excinfo) -> str:
    exc = excinfo.value
    msg = getattr(exc, "msg", None) or str(exc)
    if not msg:
        msg = type(exc).__name__
    if not isinstance(exc, (AssertionError, pytest.fail.Exception)):
        msg = f"internal grader error: the grader could not run this check ({type(exc).__name__}: {msg}); tell your instructor"
    elif isinstance(exc, AssertionError) and "\nassert " in msg:
        # Where pytest rewrote the assert (the check module imported under a pytest session), drop
        # its explanation: the student reads our message, the same whichever way the check ran.
        msg = msg[: msg.index("\nassert ")]
    return msg.strip()


class GradingPlugin:
    """Provides the submission to the checks and collects one CheckResult per check."""

    def __init__(self, submission):
        self._submission = submission
        self._assignment = submission.assignment
        self.results: dict[str, CheckResult] = {}
        self.errors: set[str] = set()  # checks that raised something other than a failed assertion: the grader's fault
        self._scores: dict[str, Score] = {}

    @property
    def assignment_of_run(self):
        """The assignment whose checks run (for a check module that makes its tests from the configuration)."""
        return self._assignment

    # -- configuration ---------------------------------------------------------------------
    def pytest_configure(self, config):
        config.addinivalue_line("markers", "check(id): the graded check (from course_config) this test decides")

    # -- fixtures --------------------------------------------------------------------------
    @pytest.fixture
    def submission(self):
        return self._submission

    @pytest.fixture
    def assignment(self):
        return self._assignment

    def _model_name(self, request) -> str:
        return self._assignment.model_of(check_id(request.node)).name

    def _test_set(self, request) -> str:
        return self._assignment.check(check_id(request.node)).test_set

    @pytest.fixture
    def model(self, request):
        """The architecture of the model this check judges; fails the check if its file can't be read."""
        name = self._model_name(request)
        if name not in self._submission.models:
            pytest.fail(self._submission.model_problems.get(name, "model not read"), pytrace=False)
        return self._submission.models[name]

    @pytest.fixture
    def predictions(self, request):
        """That model's outputs on the check's hidden test set, made in the sandbox."""
        name = self._model_name(request)
        outputs = self._submission.predictions_on(self._test_set(request))
        if name not in outputs:
            sub = self._submission
            problem = sub.model_problems.get(name) or sub.prediction_problems.get(name, "no predictions")
            pytest.fail(problem, pytrace=False)
        return outputs[name]

    @pytest.fixture
    def labels(self, request):
        """The labels of the check's hidden test set (trusted side only)."""
        return self._submission.labels_on(self._test_set(request))

    @pytest.fixture
    def measured(self, predictions, labels):
        """The dataset's metric of those predictions (``autograder.model_checks.measure``)."""
        from autograder.model_checks import measure

        return measure(self._submission.metric.as_facts(), predictions, labels)

    @pytest.fixture
    def metric_title(self):
        """The dataset's metric as students read it ("accuracy", "ROC AUC", "mean absolute error")."""
        return self._submission.metric.title

    @pytest.fixture
    def advice(self, request):
        """What a metric below full credit tells the student to do: the model's diagnosis where the grader made
        one (a model that expects 0-255 pixels), else the course's advice for that kind of model."""
        spec = self._assignment.model_of(check_id(request.node))
        return self._submission.diagnoses.get(spec.name) or spec.advice

    @pytest.fixture
    def threshold(self, request):
        return self._assignment.threshold(self._submission.profile, check_id(request.node))

    @pytest.fixture
    def score(self, request):
        s = Score()
        self._scores[request.node.nodeid] = s
        return s

    # -- results ---------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        cid = check_id(item)
        if cid is None:
            return
        check = self._assignment.check(cid)
        if report.when == "call" or (report.when == "setup" and report.failed):
            recorded = self._scores.get(item.nodeid)
            if report.passed:
                fraction, output = 1.0, (recorded.message if recorded else "passed")
            else:
                fraction = 0.0
                output = failure_message(call.excinfo) if call.excinfo else str(report.longrepr)
                if call.excinfo and not isinstance(call.excinfo.value, (AssertionError, pytest.fail.Exception)):
                    self.errors.add(cid)
                if recorded and recorded.message and recorded.message not in output:
                    output = f"{recorded.message}\n{output}"
            if recorded is not None and recorded.fraction is not None:
                fraction = recorded.fraction
            self.results[cid] = CheckResult(
                id=cid,
                title=check.title,
                points=check.points,
                score=round(check.points * fraction, 4),
                output=output,
                status="passed" if fraction == 1.0 else "failed",
            )
