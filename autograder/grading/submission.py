"""Grade one submission: the one path the batch, Gradescope, calibration and the tests all use.

For one student's folder (nbgrader's ``submitted/<student>/<assignment>/``):

1. copy the student's regular files into a fresh scratch folder;
2. with ``execute``: run the notebook in the sandbox with the profile's parameters, on data without
   the test labels, and keep only the model files that run saves (:mod:`autograder.grading.execute`;
   with ``keep_dir``, the executed notebook and the model files graded are kept there);
3. read each model's architecture from its file (no deserialization);
4. have a fresh sandbox per model load it and predict the hidden test inputs;
5. run the assignment's checks (pytest) on what came back, with the labels on this side only, and
   compute the aggregates the feedback page shows.

A problem with the submission becomes a zero with a message for the checks it affects.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import course_config
from autograder import sandbox
from autograder.checks import check_module
from autograder.checks.plugin import GradingPlugin
from autograder.datasets.tasks import SCALE_PROBE_SET
from autograder.grading.execute import execute_notebook
from autograder.grading.files import copy_submission
from autograder.grading.predict import Prediction, predict
from autograder.keras_numpy.architecture import ModelFileError, ModelInfo
from autograder.model_checks import accuracy_of, input_scale_problem
from autograder.model_files.locate import expected_names, locate
from autograder.model_files.read import inspect, job_kind
from autograder.results import CheckResult, StudentResult


@dataclass
class Submission:
    """What the checks see of one student's work."""

    student: str
    assignment: course_config.Assignment
    profile: str
    labels: np.ndarray
    # Per model name (course_config.ModelSpec.name): what was read, or why not. A model that could
    # not be read has a model problem and no prediction problem of its own.
    models: dict = field(default_factory=dict)
    model_problems: dict[str, str] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)  # per model, on the test set
    # The same for the assignment's other hidden test sets (e.g. "moved"): {test set: {model: outputs}},
    # and their labels.
    more_predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    more_labels: dict[str, np.ndarray] = field(default_factory=dict)
    prediction_problems: dict[str, str] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)  # how each model's predictions were made
    files: dict[str, str] = field(default_factory=dict)  # per model: the file graded (spec.file or its .h5 twin)
    prediction_usage: dict[str, dict] = field(default_factory=dict)  # per model: what its prediction job used
    notes: list[str] = field(default_factory=list)  # shown to the student above the checks
    execution: dict = field(default_factory=dict)
    limits_hit: list[str] = field(default_factory=list)
    # Per model: why its metrics fall short when the grader can tell (a model that expects 0-255 pixels).
    diagnoses: dict[str, str] = field(default_factory=dict)
    metric: course_config.Metric | None = None  # what the metric checks measure (the dataset's metric)
    parameters: dict[str, dict] = field(default_factory=dict)  # per model: its kept parameters (autograder.similarity)

    def predictions_on(self, test_set: str) -> dict[str, np.ndarray]:
        """Each model's outputs on one hidden test set."""
        return self.predictions if test_set == "test" else self.more_predictions.get(test_set, {})

    def labels_on(self, test_set: str) -> np.ndarray:
        """The labels of one hidden test set (trusted side only)."""
        return self.labels if test_set == "test" else self.more_labels[test_set]

    def outputs_of(self, model: str) -> dict[str, np.ndarray]:
        """One model's outputs on every test set it was scored on: {test set: outputs}."""
        sets = {"test": self.predictions, **self.more_predictions}
        return {name: by_model[model] for name, by_model in sets.items() if model in by_model}


def prepare_submission(
    student: str,
    src: Path,
    assignment: course_config.Assignment,
    task,
    *,
    profile: course_config.Profile,
    limits: course_config.Limits,
    release_dir: Path,
    execute: bool,
    backend: str,
    keep_dir: Path | None = None,
    threads: int = 0,
    gpus: int = 0,
    carried_notes: tuple[str, ...] = (),
) -> Submission:
    """Everything the checks need to know about one student's submission (``carried_notes``: what was left
    out of ``src`` before it got here, e.g. by :func:`autograder.grading.files.pack`)."""
    submission = Submission(student=student, assignment=assignment, profile=profile.name, labels=task.labels,
                            metric=task.metric_spec)
    caveat = None if execute else task.saved_model_caveat()
    if caveat:
        submission.notes.append(f"Note: {caveat}.")
    for test_set in task.test_sets[1:]:
        submission.more_labels[test_set] = task.labels_of(test_set)
    with sandbox.scratch(limits.disk_limit_mb) as workdir:
        copy_submission(src, workdir, submission.notes, limits.max_submission_mb)
        submission.notes += carried_notes
        started = time.time()  # under execute, a model file under another name counts only if the run wrote it
        if execute:
            run = execute_notebook(workdir, assignment, task, profile=profile, limits=limits, release_dir=release_dir,
                                   backend=backend, keep_dir=keep_dir, threads=threads, gpus=gpus)
            submission.execution = run.report
            submission.notes += run.notes
            submission.limits_hit += run.limits_hit
        for spec in assignment.models:
            model_path = workdir / spec.file
            try:
                model_path, note = locate(workdir, spec.file, spec.formats, claimed=claimed_names(assignment, spec),
                                          newer_than=started - 1 if execute else None)
                if note:
                    submission.notes.append(note)
                submission.models[spec.name] = inspect(spec.kind, model_path, limits.max_model_file_mb, spec.formats)
                submission.files[spec.name] = model_path.name
                if execute and keep_dir is not None:  # what the re-run saved and was graded, beside executed.ipynb
                    shutil.copyfile(model_path, keep_dir / model_path.name)
            except ModelFileError as exc:
                submission.model_problems[spec.name] = model_problem(exc, spec, model_path, submission, execute)
                continue
            record_prediction(submission, spec.name, predict(spec, model_path, submission.models[spec.name], task,
                                                             limits=limits, backend=backend, threads=threads,
                                                             kind=job_kind(submission.models[spec.name])))
    return submission


def claimed_names(assignment: course_config.Assignment, spec: course_config.ModelSpec) -> tuple[str, ...]:
    """The file names the assignment's other models may have (never taken for ``spec``)."""
    return tuple(name for other in assignment.models if other is not spec
                 for name in expected_names(other.file, other.formats))


def model_problem(exc: ModelFileError, spec: course_config.ModelSpec, model_path: Path, submission: Submission,
                  execute: bool) -> str:
    """What the student reads when a model file cannot be read: its first cause, or how to make the file."""
    problem = str(exc)
    cause = submission.execution.get("first_cause") if execute else None
    if cause and model_path.exists():  # name the first cause, not only what it broke
        problem = f"{cause}; {model_path.name}, written after it, is incomplete ({problem})"
    if not model_path.exists() and problem == f"model file {spec.file} not found":
        problem = (
            f"model file {spec.file} not found: "
            + ("the notebook did not save it" if execute else "run the notebook's save cell (under \"Save the "
               f"model{'s' if len(submission.assignment.models) > 1 else ''}\"), which writes it, "
               "and submit the file next to the notebook")
        )
        # Under execute, why: the cell that saves it and the error that stopped it (autograder.grading.missing), not
        # the notebook's first error, which may have nothing to do with this file.
        why = submission.execution.get("not_saved", {}).get(spec.file) if execute else None
        why = why or cause or (submission.notes[-1] if execute and submission.notes else None)
        if why:
            problem += f" ({why})"
    return problem


def record_prediction(submission: Submission, model: str, prediction: Prediction) -> None:
    """Keep one model's prediction (outputs per test set) or its problem in ``submission``."""
    submission.limits_hit += prediction.limits_hit
    if prediction.usage:
        submission.prediction_usage[model] = prediction.usage
    if prediction.engine:
        submission.engines[model] = prediction.engine
    if prediction.parameters:
        submission.parameters[model] = prediction.parameters
    if prediction.problem is not None:
        submission.prediction_problems[model] = prediction.problem
        return
    probe = prediction.outputs.pop(SCALE_PROBE_SET, None)
    for test_set, part in prediction.outputs.items():
        by_model = submission.predictions if test_set == "test" else submission.more_predictions.setdefault(test_set, {})
        by_model[model] = part
    if probe is not None and "test" in prediction.outputs:
        n = len(probe)
        labels = submission.labels[:n]
        scaled = accuracy_of(prediction.outputs["test"][:n], labels)
        raw = accuracy_of(np.nan_to_num(probe), labels)
        diagnosis = input_scale_problem(scaled, raw, n, images="the test images")
        if diagnosis:
            submission.diagnoses[model] = diagnosis


# pytest's plugins the checks never use, off: a session with them costs 0.12 s, without them 0.03 s, once per
# submission (most of it the unraisable-exception plugin's forced garbage collections at the session's end).
UNUSED_PYTEST_PLUGINS = (
    "cacheprovider", "warnings", "randomly", "unraisableexception", "threadexception", "faulthandler", "logging",
    "doctest", "junitxml", "pastebin", "legacypath", "tmpdir", "stepwise", "setuponly", "setupplan", "subtests",
    "unittest", "debugging", "xdist", "xdist.looponfail",
)


def run_checks(submission: Submission) -> tuple[list[CheckResult], list[str]]:
    """Run the assignment's check module on ``submission``: one CheckResult per configured check, and the
    checks the grader itself failed to run (internal errors, never the submission's fault)."""
    import pytest

    plugin = GradingPlugin(submission)
    module = check_module(submission.assignment.name)
    args = [
        str(module),
        "-q", *(arg for name in UNUSED_PYTEST_PLUGINS for arg in ("-p", f"no:{name}")),
        "--assert=plain", "--import-mode=importlib", "-o", "addopts=", "-o", "testpaths=",
        "--rootdir", str(module.parent),
    ]
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        pytest.main(args, plugins=[plugin])
    results, errors = [], sorted(plugin.errors)
    for check in submission.assignment.checks:
        if check.id not in plugin.results:
            errors.append(check.id)
        results.append(
            plugin.results.get(check.id)
            or CheckResult(check.id, check.title, check.points, 0.0,
                           "internal grader error: the grader could not run this check; tell your instructor", "failed")
        )
    return results, errors


def metric_values(submission: Submission, task) -> dict[str, float]:
    """The measured metric of every metric check (those with thresholds) whose model made predictions."""
    a = submission.assignment
    values = {}
    for check_id in a.thresholds.get(submission.profile, {}):
        spec, test_set = a.model_of(check_id), a.check(check_id).test_set
        outputs = submission.predictions_on(test_set).get(spec.name)
        if outputs is not None:
            values[check_id] = round(float(task.metric(outputs, submission.labels_on(test_set))), 6)
    return values


def plausibility_flags(submission: Submission, metrics: dict[str, float]) -> list[dict]:
    """A flag for each metric check whose value is above the assignment's plausibility ceiling."""
    a = submission.assignment
    flags = []
    for check_id, value in metrics.items():
        ceiling = a.ceiling(submission.profile, check_id)
        if ceiling is not None and value > ceiling.value:
            flags.append({
                "check": check_id,
                "reason": f"{check_id}: {value:.4f} is above the plausibility ceiling {ceiling.value:.4f} for this "
                          f"kind of model ({ceiling.source}); was it trained on the test data? An instructor will "
                          "look before the grade counts",
                "value": value,
                "ceiling": ceiling.value,
            })
    return flags


def grade_submission(
    student: str,
    src: Path,
    assignment: course_config.Assignment,
    task,
    *,
    profile: course_config.Profile,
    execute: bool = False,
    backend: str | None = None,
    keep_dir: Path | None = None,
    threads: int = 0,
    gpus: int = 0,
    limits: course_config.Limits | None = None,
    release_dir: Path | None = None,
    carried_notes: tuple[str, ...] = (),
) -> StudentResult:
    """Grade ``src`` (one student's folder for ``assignment``) on ``task``'s hidden data.

    ``limits`` (default: the course's) bound every sandboxed job; ``release_dir`` (default: the course's
    ``release/<assignment>/``) is what a re-executed notebook's read-only cells and helpers are put back from.
    """
    start = time.monotonic()
    backend = backend or sandbox.default_backend()
    limits = limits or course_config.LIMITS
    release_dir = release_dir or course_config.COURSE_DIR / "release" / assignment.name
    submission = prepare_submission(
        student, src, assignment, task, profile=profile, limits=limits, release_dir=release_dir, execute=execute,
        backend=backend, keep_dir=keep_dir, threads=threads, gpus=gpus, carried_notes=tuple(carried_notes),
    )
    checks, errors = run_checks(submission)
    extra = {"profile": profile.name, "executed": execute, "sandbox": backend,
             **({"execution": submission.execution} if execute else {})}
    if errors:
        extra["internal_errors"] = errors  # not committed as done: the next run grades this submission again
    if submission.limits_hit:
        extra["limits_hit"] = submission.limits_hit
    for name, info in submission.models.items():
        extra.setdefault("models", {})[name] = {
            "file": submission.files.get(name),
            "summary": info.summary(),
            **({"keras_version": info.keras_version} if getattr(info, "keras_version", None) else {}),
            **({"parameters": info.n_params} if isinstance(info, ModelInfo) else {}),
            **({"engine": submission.engines[name]} if name in submission.engines else {}),
            **({"prediction": submission.prediction_usage[name]} if name in submission.prediction_usage else {}),
        }
    metrics = metric_values(submission, task)
    if metrics:
        extra["metrics"] = metrics
        extra["leaderboard"] = leaderboard_entries(submission, metrics)
    flags = plausibility_flags(submission, metrics)
    details = {}
    for spec in assignment.models:
        if spec.name in submission.predictions:
            details[spec.name] = {**task.details(spec, submission.outputs_of(spec.name)),
                                  "file": submission.files.get(spec.name, spec.file)}
    result = StudentResult(student, assignment.name, checks, "\n".join(submission.notes),
                           time.monotonic() - start, extra, details, flags=flags)
    result.evidence = evidence(submission, task)
    return result


def leaderboard_entries(submission: Submission, metrics: dict[str, float]) -> list[dict]:
    """Gradescope's leaderboard entries of the measured figures ({"name", "value", "order"}), the check worth most
    points first (the one a leaderboard ranks by)."""
    a = submission.assignment
    ranked = sorted(metrics, key=lambda check_id: -a.check(check_id).points)
    return [{"name": a.check(check_id).title, "value": metrics[check_id],
             "order": "asc" if a.threshold(submission.profile, check_id).lower_is_better else "desc"}
            for check_id in ranked]


def evidence(submission: Submission, task) -> dict[str, np.ndarray]:
    """What the class's similarity report keeps of each model: its answers on the hidden test set and its
    parameters (autograder.similarity), as {"<model>/<what>": array}."""
    from autograder.similarity import answer_evidence

    kept = {}
    for model, outputs in submission.predictions.items():
        kept[f"{model}/answers"] = answer_evidence(outputs, task.metric_spec.outputs)
        for what, array in submission.parameters.get(model, {}).items():
            kept[f"{model}/{what}"] = array
    return kept
