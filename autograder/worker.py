"""One submission in a worker process, wherever the worker runs (the local pool, a Dask worker).

What a worker needs: how to grade (:class:`Job`), the hidden test data it loads once (:func:`task_for`),
grading one student's folder and writing their files (:func:`grade_folder`), and what it must share
with the client: the kit version (:func:`kit_version`) and the course's facts (:func:`config_digest`). :mod:`autograder.batch` and :mod:`autograder.cluster`
both hand submissions to it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import course_config
from autograder.exporters import student_folder
from autograder.results import StudentResult, failed_result

KIT_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def kit_version() -> str:
    """The kit's version and a digest of its code: a changed grader regrades everything."""
    from autograder import __version__

    h = hashlib.sha256(__version__.encode())
    for path in sorted(KIT_DIR.rglob("*.py")):
        h.update(str(path.relative_to(KIT_DIR)).encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def config_digest(assignment: course_config.Assignment, profile: course_config.Profile, execute: bool) -> str:
    """A digest of every course fact that decides this assignment's grades under ``profile`` (course_config's
    part of a result's fingerprint; a Dask worker must show the client's)."""
    from autograder.datasets.tasks import task_class

    facts = [repr(assignment), repr(profile), repr(course_config.LIMITS), f"execute={execute}"]
    facts += [repr(fact) for fact in task_class(assignment).course_facts(profile)]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


@dataclass
class Job:
    """How a worker grades: the assignments, the profile and mode, the sandbox, the folders, the limits.

    The assignments, the profile and the limits travel resolved, so that a worker grades by the facts the
    client fingerprinted, never by its own reading of course_config (a spawned process or a Dask worker
    imports it afresh)."""

    profile: course_config.Profile
    execute: bool
    backend: str
    submitted_dir: Path
    out_dir: Path
    threads: int = 0
    gpus: int = 0  # > 0: a re-executed notebook is given the worker's GPUs (--gpus-per-task)
    limits: course_config.Limits = field(default_factory=lambda: course_config.LIMITS)
    assignments: dict[str, course_config.Assignment] = field(default_factory=dict)  # by name: those of the batch

    def assignment(self, name: str) -> course_config.Assignment:
        """The assignment ``name`` as the client resolved it (KeyError for one that is not the batch's)."""
        return self.assignments[name]


def default_workers() -> int:
    """The cores this process may use: the default number of local workers."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def task_for(assignment: course_config.Assignment, profile: course_config.Profile, tasks: dict):
    """The hidden test data of ``assignment`` under ``profile``, loaded once into ``tasks``."""
    key = (assignment.dataset, assignment.test_sets, profile.name)
    if key not in tasks:
        from autograder.datasets.tasks import load_task

        tasks[key] = load_task(assignment, profile)
    return tasks[key]


def write_student_files(result: StudentResult, folder: Path) -> None:
    """The student's files (results.json, feedback pages), then the record that says they are complete."""
    student_folder.write(result, folder)


def clear_run_files(assignment: course_config.Assignment, folder: Path) -> None:
    """Remove what an earlier re-run left in a student's output folder (its notebook and models): only this
    grading's files stay, whatever mode graded them before."""
    from autograder.grading.execute import run_files

    for name in run_files(assignment):
        (folder / name).unlink(missing_ok=True)


def grade_folder(assignment: course_config.Assignment, student: str, src: Path, fp: str, job: Job, tasks: dict,
                 keep_dir: Path, carried_notes: tuple[str, ...] = (), grader: dict | None = None) -> StudentResult:
    """Grade one student's folder and write their files into ``keep_dir``; never raises for a bad submission.

    ``grader``: the worker that graded it (a Dask worker's address and host), kept in the result's ``extra``."""
    profile = job.profile
    keep_dir.mkdir(parents=True, exist_ok=True)
    clear_run_files(assignment, keep_dir)
    start = time.monotonic()
    if not src.is_dir():
        result = failed_result(student, assignment, f"no submission found at {student}/{assignment.name}/")
    else:
        from autograder.grading.submission import grade_submission

        try:
            task = task_for(assignment, profile, tasks)
            result = grade_submission(student, src, assignment, task, profile=profile, execute=job.execute,
                                      backend=job.backend, keep_dir=keep_dir, threads=job.threads, gpus=job.gpus, limits=job.limits,
                                      carried_notes=carried_notes)
        except Exception as exc:  # a grader bug must not cost anyone else their result
            traceback.print_exc(file=sys.stderr)
            result = failed_result(
                student, assignment, f"internal grader error ({type(exc).__name__}: {exc}); tell your instructor",
                time.monotonic() - start, internal=True,
            )
    result.fingerprint = fp
    if grader:
        result.extra["grader"] = grader
    write_student_files(result, keep_dir)
    return result
