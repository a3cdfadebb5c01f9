"""Grade one submission: the one path the batch, Gradescope, calibration and the tests all use.

For one student's folder (nbgrader's ``submitted/<student>/<assignment>/``):

1. copy the student's regular files into a fresh scratch folder;
2. with ``execute``: run the notebook in the sandbox with the profile's parameters, on data without
   the test labels, and keep only the model files that run saves (:mod:`autograder.notebook`);
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
from autograder.keras_numpy.architecture import ModelFileError, ModelInfo, inspect_model, locate
from autograder.notebook import execute_notebook, read_json
from autograder.results import CheckResult, StudentResult
from autograder.skops_file import inspect_skops


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

    def record_limits(self, result: sandbox.SandboxResult, what: str) -> None:
        self.limits_hit += [f"{limit} ({what})" for limit in result.limits_hit()]

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


def copy_submission(src: Path, dst: Path, notes: list[str]) -> None:
    """Copy the regular files of ``src`` into ``dst``; links and oversized content are left out."""
    total = 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part.startswith(".ipynb_checkpoints") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_symlink():
            notes.append(f"{rel} is a symbolic link and was ignored")
            continue
        if path.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
            continue
        if not path.is_file():
            continue
        total += path.stat().st_size
        if total > course_config.LIMITS.max_submission_mb * 2**20:
            notes.append(f"submission is larger than {course_config.LIMITS.max_submission_mb} MB; {rel} and later "
                         "files were ignored")
            break
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)


def inspect(spec: course_config.ModelSpec, path: Path):
    """Architecture of one model file, read without loading it (ModelFileError if unusable)."""
    max_mb = course_config.LIMITS.max_model_file_mb
    if spec.kind == "skops":
        info = inspect_skops(path, max_mb=max_mb)
        if info.foreign:
            raise ModelFileError(
                f"{path.name} contains objects from outside scikit-learn ({', '.join(info.foreign[:3])}); "
                "the grader only loads scikit-learn models"
            )
        return info
    return inspect_model(path, max_mb=max_mb)


def predict(submission: Submission, spec: course_config.ModelSpec, model_path: Path, task, *,
            backend: str, threads: int = 0) -> None:
    """Have a fresh sandbox load one model and predict the test inputs; keep the outputs or the problem."""
    limits = course_config.LIMITS
    try:
        shape = task.input_shape(spec, submission.models[spec.name])
    except ValueError as exc:
        submission.prediction_problems[spec.name] = str(exc)
        return
    with sandbox.scratch(limits.disk_limit_mb) as workdir:
        shutil.copyfile(model_path, workdir / model_path.name)
        sandbox.install_job(workdir)
        argv = sandbox.python_argv(
            "predict", spec.kind, f"{sandbox.WORK}/{model_path.name}", f"{sandbox.DATA}/inputs.npy",
            f"{sandbox.WORK}/predictions.npy", ",".join(str(d) for d in shape),
        )
        result = sandbox.run_job(
            argv,
            workdir,
            time_limit_s=limits.predict_time_limit_s,
            memory_limit_mb=limits.predict_memory_limit_mb,
            data_dir=task.predict_data_dir(),
            backend=backend,
            threads=threads,
            **limits.job_args(),
        )
        submission.record_limits(result, f"predicting with {spec.file}")
        submission.prediction_usage[spec.name] = result.usage()
        report = read_json(workdir / "predictions.json")
        if not result.ok:
            said = report.get("problem") if result.returncode == 3 and not result.limits_hit() else None
            submission.prediction_problems[spec.name] = (
                said[:1000] if isinstance(said, str) else
                f"the grader could not load {model_path.name} and predict: {result.problem()}"
            )
            return
        engine = report.get("engine")
        if isinstance(engine, str):
            submission.engines[spec.name] = engine[:200]
        out = workdir / "predictions.npy"
        try:
            if out.is_symlink() or not out.is_file():
                raise ValueError("no predictions were written")
            outputs = np.load(out, allow_pickle=False)
        except (OSError, ValueError) as exc:
            submission.prediction_problems[spec.name] = f"the grader could not read the model's predictions ({exc})"
            return
    try:
        outputs = task.check_predictions(spec, outputs)
    except ValueError as exc:
        submission.prediction_problems[spec.name] = str(exc)
        return
    for test_set, part in task.split(outputs).items():
        by_model = submission.predictions if test_set == "test" else submission.more_predictions.setdefault(test_set, {})
        by_model[spec.name] = part


def prepare_submission(
    student: str,
    src: Path,
    assignment: course_config.Assignment,
    task,
    *,
    profile: course_config.Profile,
    execute: bool,
    backend: str,
    keep_dir: Path | None = None,
    threads: int = 0,
) -> Submission:
    """Everything the checks need to know about one student's submission."""
    submission = Submission(student=student, assignment=assignment, profile=profile.name, labels=task.labels)
    caveat = None if execute else task.saved_model_caveat()
    if caveat:
        submission.notes.append(f"Note: {caveat}.")
    for test_set in task.test_sets[1:]:
        submission.more_labels[test_set] = task.labels_of(test_set)
    with sandbox.scratch(course_config.LIMITS.disk_limit_mb) as workdir:
        copy_submission(src, workdir, submission.notes)
        if execute:
            execute_notebook(submission, workdir, task, profile=profile, backend=backend, keep_dir=keep_dir,
                             threads=threads)
        for spec in assignment.models:
            model_path = workdir / spec.file
            try:
                if spec.kind == "keras":
                    model_path, note = locate(workdir, spec.file)
                    if note:
                        submission.notes.append(note)
                submission.models[spec.name] = inspect(spec, model_path)
                submission.files[spec.name] = model_path.name
            except ModelFileError as exc:
                problem = str(exc)
                cause = submission.execution.get("first_cause") if execute else None
                if cause and model_path.exists():  # name the first cause, not only what it broke
                    problem = f"{cause}; {model_path.name}, written after it, is incomplete ({problem})"
                if not model_path.exists() and problem == f"model file {spec.file} not found":
                    problem = (
                        f"model file {spec.file} not found: "
                        + ("the notebook did not save it" if execute else "run the notebook's save cell (under \"Save the "
                           f"model{'s' if len(assignment.models) > 1 else ''}\"), which writes it, "
                           "and submit the file next to the notebook")
                    )
                    if execute and submission.notes:
                        problem += f" ({submission.notes[-1]})"
                submission.model_problems[spec.name] = problem
                continue
            predict(submission, spec, model_path, task, backend=backend, threads=threads)
    return submission


def run_checks(submission: Submission) -> tuple[list[CheckResult], list[str]]:
    """Run the assignment's check module on ``submission``: one CheckResult per configured check, and the
    checks the grader itself failed to run (internal errors, never the submission's fault)."""
    import pytest

    plugin = GradingPlugin(submission)
    module = check_module(submission.assignment.name)
    args = [
        str(module),
        "-q", "-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:randomly",
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
) -> StudentResult:
    """Grade ``src`` (one student's folder for ``assignment``) on ``task``'s hidden data."""
    start = time.monotonic()
    backend = backend or sandbox.default_backend()
    submission = prepare_submission(
        student, src, assignment, task, profile=profile, execute=execute, backend=backend, keep_dir=keep_dir,
        threads=threads,
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
    flags = plausibility_flags(submission, metrics)
    details = {}
    for spec in assignment.models:
        if spec.name in submission.predictions:
            details[spec.name] = {**task.details(spec, submission.outputs_of(spec.name)),
                                  "file": submission.files.get(spec.name, spec.file)}
    return StudentResult(student, assignment.name, checks, "\n".join(submission.notes),
                         time.monotonic() - start, extra, details, flags=flags)
