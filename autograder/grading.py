"""Grade every submission of an assignment: prepare each in the sandbox, run the checks, write results.

For each ``SUBMITTED_DIR/<student>/<assignment>/`` (nbgrader's layout):

1. copy the student's files into a fresh scratch folder (regular files only);
2. with ``execute``: run the notebook in the sandbox with the profile's parameters, on data without
   the test labels, and keep only the model file that run saves;
3. read the model's architecture from its file (no deserialization);
4. have the sandbox load the model (Keras safe mode) and predict the hidden test inputs;
5. run the assignment's checks (pytest) on what came back, with the labels on this side only.

One student's problem never stops the batch: it becomes a zero with a message for that check.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import course_config
from autograder import sandbox
from autograder.checks import check_module
from autograder.checks.common import accuracy, roc_auc
from autograder.checks.plugin import CheckResult, GradingPlugin
from autograder.keras_file import ModelFileError, ModelInfo, inspect_model
from autograder.skops_file import inspect_skops

MAX_SUBMISSION_MB = 200
EXECUTED_NOTEBOOK = "executed.ipynb"
INJECTED_TAG = "injected-parameters"


# ------------------------------------------------------------------------------------------------
# Test data (trusted side)
# ------------------------------------------------------------------------------------------------
class Task:
    """Grader-side data of one dataset: hidden test inputs (``x_test``), their labels (``y_test``),
    and, made on first use, the folder a re-executed notebook sees as ``/data`` (no test labels)."""

    x_test: np.ndarray
    y_test: np.ndarray
    _sandbox_dir: tempfile.TemporaryDirectory | None = None

    @property
    def labels(self) -> np.ndarray:
        return self.y_test

    def sandbox_data_dir(self) -> Path:
        if self._sandbox_dir is None:
            self._sandbox_dir = tempfile.TemporaryDirectory(prefix="autograder-data-")
            self.write_sandbox_data(Path(self._sandbox_dir.name))
        return Path(self._sandbox_dir.name)

    def write_sandbox_data(self, folder: Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        if self._sandbox_dir is not None:
            self._sandbox_dir.cleanup()
            self._sandbox_dir = None


class MnistTask(Task):
    """MNIST for the grader: the test images for the sandbox, the labels for the checks."""

    metric = staticmethod(accuracy)

    def __init__(self, profile: course_config.Profile | None = None):
        from autograder.course_data import load_mnist

        (self.x_train, self.y_train), (self.x_test, self.y_test) = load_mnist()
        if self.y_test is None:
            raise RuntimeError("the grader's MNIST file has no test labels; point COURSE_DATA_DIR at the full file")

    def inputs_for(self, spec: course_config.ModelSpec, model: ModelInfo) -> np.ndarray:
        """Test images scaled to [0, 1] in the model's declared input shape; ValueError if none fits."""
        images = self.x_test.astype(np.float32) / course_config.MNIST_PIXEL_SCALE
        shape = tuple(model.input_shape or ())
        for candidate in ((28, 28), (784,), (28, 28, 1)):
            if shape == candidate:
                return images.reshape((len(images),) + candidate)
        raise ValueError(
            f"the model expects inputs of shape {shape or 'unknown'}; the grader feeds MNIST images as "
            "(28, 28), (784,) or (28, 28, 1). Start the model with keras.Input(shape=(28, 28))."
        )

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """The model's outputs if they are one row of 10 finite class scores per image; else ValueError."""
        expected = (len(self.x_test), 10)
        if outputs.shape != expected:
            raise ValueError(f"the model outputs shape {outputs.shape}; expected {expected}, one row of 10 class scores per image")
        if not np.all(np.isfinite(outputs)):
            raise ValueError("the model outputs NaN or infinite values")
        return outputs

    def write_sandbox_data(self, folder: Path) -> None:
        """Training data and test images only, as ``mnist.npz``."""
        np.savez(folder / "mnist.npz", x_train=self.x_train, y_train=self.y_train, x_test=self.x_test)


class SusyTask(Task):
    """SUSY for the grader: hidden test events and their labels, and training rows for re-execution.

    Which events are used comes from ``course_config.SUSY_DATA[profile]``: the UCI file's standard
    split, or simulated events (training and test drawn with different seeds).
    """

    metric = staticmethod(roc_auc)

    def __init__(self, profile: course_config.Profile):
        self.data = course_config.SUSY_DATA[profile.name]
        self.x_test, self.y_test = self._events(test=True)

    def _events(self, *, test: bool):
        d = self.data
        if d.source == "simulated":
            from autograder.susy_sim import simulate

            return simulate(d.test_rows if test else d.train_rows, seed=d.test_seed if test else d.train_seed)
        from autograder.course_data import SUSY_TRAIN_ROWS, load_susy

        if test:
            return load_susy(start=SUSY_TRAIN_ROWS, stop=SUSY_TRAIN_ROWS + d.test_rows)
        return load_susy(stop=d.train_rows)

    def inputs_for(self, spec: course_config.ModelSpec, model) -> np.ndarray:
        """The 18 features of the hidden events, in the UCI normalisation, as float32."""
        return np.ascontiguousarray(self.x_test, dtype=np.float32)

    def check_predictions(self, spec: course_config.ModelSpec, outputs: np.ndarray) -> np.ndarray:
        """One signal score per event: accepts (N,), (N, 1) or (N, 2) class probabilities; else ValueError."""
        n = len(self.x_test)
        if outputs.shape in ((n,), (n, 1)):
            scores = outputs.reshape(n)
        elif outputs.shape == (n, 2):
            scores = outputs[:, 1]
        else:
            raise ValueError(
                f"{spec.file} outputs shape {outputs.shape}; expected one signal probability per event, "
                f"({n},), ({n}, 1) or ({n}, 2)"
            )
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"{spec.file} outputs NaN or infinite values")
        return scores

    def write_sandbox_data(self, folder: Path) -> None:
        """Training rows only, in the UCI format, as ``SUSY.csv``."""
        from autograder.susy_sim import write_uci_csv

        X, y = self._events(test=False)
        write_uci_csv(folder / "SUSY.csv", X, y)


# The grader-side data behind each `Assignment.dataset`.
TASKS = {"mnist": MnistTask, "susy": SusyTask}


# ------------------------------------------------------------------------------------------------
# One submission
# ------------------------------------------------------------------------------------------------
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
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    prediction_problems: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # shown to the student above the checks
    execution: dict = field(default_factory=dict)


@dataclass
class StudentResult:
    """The graded outcome for one student and one assignment."""

    student: str
    assignment: str
    checks: list[CheckResult]
    output: str
    seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


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
        if total > MAX_SUBMISSION_MB * 2**20:
            notes.append(f"submission is larger than {MAX_SUBMISSION_MB} MB; {rel} and later files were ignored")
            break
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)


def inject_parameters(nb, parameters: dict[str, object], profile: str):
    """Insert a cell after the one tagged ``parameters`` (papermill's convention) setting ``parameters``."""
    import nbformat

    lines = [f"# Injected by the autograder (profile {profile!r})"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    cell["id"] = INJECTED_TAG
    index = next(
        (i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        0,
    )
    nb.cells.insert(index, cell)
    return index


def execute_notebook(
    submission: Submission, workdir: Path, task, *, profile: course_config.Profile, backend: str, keep_dir: Path | None
) -> None:
    """Run the student's notebook in the sandbox; on failure, say why in ``submission.notes``."""
    import nbformat

    a = submission.assignment
    nb_path = workdir / a.notebook
    if not nb_path.is_file():
        found = sorted(p.name for p in workdir.glob("*.ipynb"))
        submission.execution = {"status": "missing"}
        submission.notes.append(
            f"notebook {a.notebook} not found in the submission (found: {', '.join(found) or 'no notebooks'})"
        )
        return
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception as exc:
        submission.execution = {"status": "unreadable"}
        submission.notes.append(f"{a.notebook} is not a valid notebook ({type(exc).__name__}: {exc})")
        return
    # Grade only what this run saves, never a model file that came with the submission.
    for spec in a.models:
        (workdir / spec.file).unlink(missing_ok=True)
    injected_at = inject_parameters(nb, a.parameters.get(profile.name, {}), profile.name)
    nbformat.write(nb, nb_path)
    release_dir = course_config.COURSE_DIR / "release" / a.name
    for helper in a.helpers:  # the official helpers, whatever the student's copies say
        if (release_dir / helper).is_file():
            shutil.copyfile(release_dir / helper, workdir / helper)
    sandbox.install_job(workdir)
    argv = sandbox.python_argv(
        "execute", f"{sandbox.WORK}/{a.notebook}", f"{sandbox.WORK}/.{EXECUTED_NOTEBOOK}", f"{sandbox.WORK}/.execution.json"
    )
    result = sandbox.run_job(
        argv,
        workdir,
        time_limit_s=profile.execute_time_limit_s,
        memory_limit_mb=profile.memory_limit_mb,
        data_dir=task.sandbox_data_dir(),
        max_file_mb=course_config.LIMITS.max_file_write_mb,
        backend=backend,
    )
    report = _read_json(workdir / ".execution.json")
    submission.execution = {
        "status": "ok" if result.ok and report.get("status") == "ok" else "failed",
        "seconds": round(result.seconds, 1),
        "peak_memory_mb": round(result.peak_memory_mb),
        "sandbox": result.backend,
    }
    executed = workdir / f".{EXECUTED_NOTEBOOK}"
    if keep_dir is not None and executed.is_file() and not executed.is_symlink():
        if executed.stat().st_size < 50 * 2**20:
            shutil.copyfile(executed, keep_dir / EXECUTED_NOTEBOOK)
    if result.timed_out or result.memory_exceeded:
        submission.notes.append(f"running the notebook stopped: {result.problem()}")
    elif report.get("status") == "error":
        submission.notes.append(describe_errors(report.get("errors", []), injected_at))
    elif not result.ok:
        submission.notes.append(f"running the notebook failed: {result.problem()}")


def describe_errors(errors: list[dict], injected_at: int | None = None) -> str:
    """The first error a notebook raised, where, and how many followed (student-facing)."""
    if not errors:
        return "the notebook raised an error"
    first = errors[0]
    error = f"{first.get('ename')}: {first.get('evalue')}" if first.get("evalue") else str(first.get("ename"))
    where = ""
    if isinstance(first.get("cell"), int):
        # Number cells from 1 as the student sees them: without the cell the grader injected.
        index = first["cell"]
        if INJECTED_TAG in first.get("tags", []):
            where = " in the grader's parameter cell"
        else:
            where = f" in cell {index if injected_at is not None and index > injected_at else index + 1}"
        if first.get("grade_id"):
            where += f" ({first['grade_id']})"
    hint = " (a `YOUR CODE HERE` cell is not filled in yet)" if first.get("ename") == "NotImplementedError" else ""
    more = f"; {len(errors) - 1} later cell(s) failed too" if len(errors) > 1 else ""
    return f"the notebook raised {error}{where}{hint}{more}"


def _read_json(path: Path) -> dict:
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 2**20:
            data = json.loads(path.read_text())
            return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        pass
    return {}


def predict(submission: Submission, spec: course_config.ModelSpec, model_path: Path, task, *, backend: str) -> None:
    """Have the sandbox load one model and predict the test inputs; keep the outputs or the problem."""
    limits = course_config.LIMITS
    try:
        inputs = task.inputs_for(spec, submission.models[spec.name])
    except ValueError as exc:
        submission.prediction_problems[spec.name] = str(exc)
        return
    with tempfile.TemporaryDirectory(prefix="autograder-predict-") as tmp:
        workdir = Path(tmp)
        shutil.copyfile(model_path, workdir / spec.file)
        np.save(workdir / "inputs.npy", inputs, allow_pickle=False)
        sandbox.install_job(workdir)
        argv = sandbox.python_argv(
            "predict", spec.kind, f"{sandbox.WORK}/{spec.file}", f"{sandbox.WORK}/inputs.npy", f"{sandbox.WORK}/predictions.npy"
        )
        result = sandbox.run_job(
            argv,
            workdir,
            time_limit_s=limits.predict_time_limit_s,
            memory_limit_mb=limits.predict_memory_limit_mb,
            max_file_mb=limits.max_file_write_mb,
            backend=backend,
        )
        if not result.ok:
            submission.prediction_problems[spec.name] = (
                f"the grader could not load {spec.file} and predict: {result.problem()}"
            )
            return
        out = workdir / "predictions.npy"
        try:
            if out.is_symlink() or not out.is_file():
                raise ValueError("no predictions were written")
            outputs = np.load(out, allow_pickle=False)
        except (OSError, ValueError) as exc:
            submission.prediction_problems[spec.name] = f"the grader could not read the model's predictions ({exc})"
            return
    try:
        submission.predictions[spec.name] = task.check_predictions(spec, outputs)
    except ValueError as exc:
        submission.prediction_problems[spec.name] = str(exc)


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
) -> Submission:
    """Everything the checks need to know about one student's submission."""
    submission = Submission(student=student, assignment=assignment, profile=profile.name, labels=task.labels)
    with tempfile.TemporaryDirectory(prefix="autograder-submission-") as tmp:
        workdir = Path(tmp)
        copy_submission(src, workdir, submission.notes)
        if execute:
            execute_notebook(submission, workdir, task, profile=profile, backend=backend, keep_dir=keep_dir)
        for spec in assignment.models:
            model_path = workdir / spec.file
            try:
                submission.models[spec.name] = inspect(spec, model_path)
            except ModelFileError as exc:
                problem = str(exc)
                if not model_path.exists():
                    problem = (
                        f"model file {spec.file} not found: "
                        + ("the notebook did not save it" if execute else "run the notebook's last cell, which saves it, "
                           "and submit the file next to the notebook")
                    )
                    if execute and submission.notes:
                        problem += f" ({submission.notes[-1]})"
                submission.model_problems[spec.name] = problem
                continue
            predict(submission, spec, model_path, task, backend=backend)
    return submission


def run_checks(submission: Submission) -> list[CheckResult]:
    """Run the assignment's check module on ``submission``; one CheckResult per configured check."""
    import pytest

    plugin = GradingPlugin(submission)
    args = [
        str(check_module(submission.assignment.name)),
        "-q", "-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:randomly",
        "--assert=plain", "--import-mode=importlib", "-o", "addopts=", "-o", "testpaths=",
        "--rootdir", str(check_module(submission.assignment.name).parent),
    ]
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        pytest.main(args, plugins=[plugin])
    results = []
    for check in submission.assignment.checks:
        results.append(
            plugin.results.get(check.id)
            or CheckResult(check.id, check.title, check.points, 0.0,
                           "the grader could not run this check (internal error; tell your instructor)", "failed")
        )
    return results


def grade_student(student: str, src: Path, assignment, task, *, profile, execute, backend, keep_dir) -> StudentResult:
    start = time.monotonic()
    submission = prepare_submission(
        student, src, assignment, task, profile=profile, execute=execute, backend=backend, keep_dir=keep_dir
    )
    checks = run_checks(submission)
    output = "\n".join(submission.notes)
    extra = {"profile": profile.name, "executed": execute, **({"execution": submission.execution} if execute else {})}
    for name, info in submission.models.items():
        extra.setdefault("models", {})[name] = {"summary": info.summary(), **(
            {"parameters": info.n_params} if isinstance(info, ModelInfo) else {})}
    return StudentResult(student, assignment.name, checks, output, time.monotonic() - start, extra)


def failed_result(student: str, assignment, message: str, seconds: float = 0.0) -> StudentResult:
    """Zero on every check, each saying ``message``."""
    checks = [CheckResult(c.id, c.title, c.points, 0.0, message, "failed") for c in assignment.checks]
    return StudentResult(student, assignment.name, checks, message, seconds)


def grade(
    assignment_name: str,
    submitted_dir: Path,
    out_dir: Path,
    *,
    execute: bool = False,
    profile_name: str = course_config.DEFAULT_PROFILE,
    students: list[str] | None = None,
    backend: str | None = None,
    log=sys.stderr,
) -> list[StudentResult]:
    """Grade ``submitted_dir/<student>/<assignment_name>/`` for every student; write results to ``out_dir``."""
    from autograder import results as results_io

    assignment = course_config.assignment(assignment_name)
    profile = course_config.profile(profile_name)
    submitted_dir = Path(submitted_dir)
    if not submitted_dir.is_dir():
        raise FileNotFoundError(f"submitted folder {submitted_dir} does not exist")
    backend = backend or sandbox.default_backend()
    names = students or sorted(p.name for p in submitted_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = TASKS[assignment.dataset](profile)
    mode = f"re-executing notebooks, profile {profile.name}" if execute else f"grading saved models, profile {profile.name}"
    print(f"grading {assignment.name} for {len(names)} student(s): {mode}; sandbox: {backend}", file=log)
    results = []
    try:
        for student in names:
            start = time.monotonic()
            src = submitted_dir / student / assignment.name
            keep_dir = out_dir / student / assignment.name
            keep_dir.mkdir(parents=True, exist_ok=True)
            if not src.is_dir():
                result = failed_result(student, assignment, f"no submission found at {student}/{assignment.name}/")
            else:
                try:
                    result = grade_student(
                        student, src, assignment, task, profile=profile, execute=execute, backend=backend, keep_dir=keep_dir
                    )
                except Exception as exc:  # a grader bug must not cost anyone else their result
                    traceback.print_exc(file=log)
                    result = failed_result(
                        student, assignment, f"internal grader error ({type(exc).__name__}: {exc}); tell your instructor",
                        time.monotonic() - start,
                    )
            results_io.write_student(result, keep_dir)
            results.append(result)
            print(f"  {student}: {result.score:g}/{result.max_score:g} ({result.seconds:.0f} s)", file=log)
        results_io.write_grades_csv(results, out_dir / "grades.csv")
    finally:
        task.close()
    return results
