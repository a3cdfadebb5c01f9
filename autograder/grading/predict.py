"""Predicting the hidden test inputs with one student model, in a fresh sandbox of its own."""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import course_config
from autograder import sandbox
from autograder.grading.execute import read_json


@dataclass
class Prediction:
    """What one model's prediction job gave back: outputs per hidden test set, or the problem."""

    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # {test set: outputs}, checked
    problem: str | None = None  # student-facing, when there are no outputs
    engine: str | None = None  # how the outputs were made ("numpy", "keras (...)", "skops")
    parameters: dict | None = None  # what the similarity report keeps of the model's parameters
    usage: dict = field(default_factory=dict)  # what the job used (absent when no job ran)
    limits_hit: list[str] = field(default_factory=list)


# The steps of a prediction job, each ending at the child's clock reading of that name.
PHASES = (("start", "started"), ("imports", "imported"), ("read_model", "read"), ("forward", "predicted"),
          ("write", "written"))


def job_phases(clock, started_at: float, seconds: float) -> dict[str, float]:
    """Seconds per step of a prediction job from the child's clock readings (``{}`` if they are not sane):
    ``start`` the sandbox and the interpreter, ``imports``, ``read_model``, ``forward`` (the predictions),
    ``write`` (the outputs), ``end`` (the child's exit and the sandbox's teardown)."""
    if not isinstance(clock, dict) or not started_at:
        return {}
    times = [started_at] + [clock.get(key) for _, key in PHASES]
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times):
        return {}
    steps = [b - a for a, b in zip(times, times[1:])]
    end = seconds - (times[-1] - started_at)
    if min(steps + [end]) < -0.05:  # a clock that runs backwards is not the job's own (it is student-writable)
        return {}
    phases = {name: round(max(0.0, step), 3) for (name, _), step in zip(PHASES, steps)}
    phases["end"] = round(max(0.0, end), 3)
    return phases


def read_parameters(path: Path, shapes, max_mb: float) -> dict | None:
    """The parameters a prediction job wrote, kept as the similarity report needs them (None where there are
    none, or they are not one plain float32 vector no larger than a model file may be)."""
    from autograder.similarity import parameter_evidence

    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > max_mb * 1e6 + 1024:
            return None
        vector = np.load(path, allow_pickle=False, mmap_mode="r")
        if vector.ndim != 1 or vector.dtype != np.float32 or not isinstance(shapes, str) or len(shapes) > 10_000:
            return None
        return parameter_evidence(vector, shapes)
    except (OSError, ValueError):
        return None


def predict(spec: course_config.ModelSpec, model_path: Path, model_info, task, *, limits: course_config.Limits,
            backend: str, threads: int = 0, kind: str | None = None) -> Prediction:
    """Have a fresh sandbox load one model and predict the task's hidden test inputs (``kind``: the job that
    loads it, "keras", "skops", "xgboost" or "lightgbm"; default the spec's kind)."""
    try:
        shape = task.input_shape(spec, model_info)
    except ValueError as exc:
        return Prediction(problem=str(exc))
    with sandbox.scratch(limits.disk_limit_mb) as workdir:
        shutil.copyfile(model_path, workdir / model_path.name)
        sandbox.install_job(workdir)
        argv = sandbox.python_argv(
            "predict", kind or spec.kind, f"{sandbox.WORK}/{model_path.name}", f"{sandbox.DATA}/inputs.npy",
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
        prediction = Prediction(usage=result.usage(),
                                limits_hit=[f"{limit} (predicting with {spec.file})" for limit in result.limits_hit()])
        report = read_json(workdir / "predictions.json")
        if not result.ok:
            said = report.get("problem") if result.returncode == 3 and not result.limits_hit() else None
            prediction.problem = (said[:1000] if isinstance(said, str) else
                                  f"the grader could not load {model_path.name} and predict: {result.problem()}")
            return prediction
        engine = report.get("engine")
        if isinstance(engine, str):
            prediction.engine = engine[:200]
        phases = job_phases(report.get("clock"), result.started_at, result.seconds)
        if phases:
            prediction.usage["phases"] = phases
        out = workdir / "predictions.npy"
        try:
            if out.is_symlink() or not out.is_file():
                raise ValueError("no predictions were written")
            outputs = np.load(out, allow_pickle=False)
        except (OSError, ValueError) as exc:
            prediction.problem = f"the grader could not read the model's predictions ({exc})"
            return prediction
        prediction.parameters = read_parameters(workdir / "parameters.npy", report.get("parameters"),
                                                limits.max_model_file_mb)
    try:
        outputs = task.check_predictions(spec, outputs)
    except ValueError as exc:
        prediction.problem = str(exc)
        return prediction
    prediction.outputs = task.split(outputs)
    return prediction
