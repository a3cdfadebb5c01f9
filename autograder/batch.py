"""Grade a class: find the submissions, skip what is already graded, grade the rest in worker processes.

Each submission is graded by :func:`autograder.grading.submission.grade_submission` in a worker process
(``pytest.main`` and stdout redirection are process-wide, so workers are processes, not threads),
every model in a sandbox of its own. A result is committed as soon as it is done: its files in
``OUT/<student>/<assignment>/`` and last ``grading.json``, atomically, with a fingerprint of what was
graded (the submission's files, the assignment's configuration, the profile and mode, the test
data, the kit's code). Running the same command again grades only what is missing or changed;
``regrade=True`` grades everything. ``grades.csv`` and ``summary.md`` are rebuilt from the records.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import course_config
from autograder import sandbox
from autograder.exporters import grades_csv, summary
from autograder.grading import files
from autograder.results import StudentResult, failed_result, load_records
from autograder.worker import (
    Job,
    config_digest,
    default_workers,
    grade_folder,
    kit_version,
    task_for,
    write_student_files,
)


def fingerprint(src: Path, config: str, data: str) -> str:
    """What a result was graded from; equal fingerprints mean the result can be reused."""
    return f"kit {kit_version()}; config {config}; data {data}; submission {files.digest(src, course_config.LIMITS.max_submission_mb)}"


# ------------------------------------------------------------------------------------------------
# One submission in a local worker process
# ------------------------------------------------------------------------------------------------
_WORKER: dict = {}


def _start_worker(job: Job) -> None:
    """Per worker process: die with the grader; test data is loaded once per dataset, on first use."""
    sandbox.die_with_parent()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _WORKER.clear()
    _WORKER.update(job=job, tasks={})


def grade_one(assignment_name: str, student: str, fp: str, job: Job | None = None, tasks: dict | None = None) -> StudentResult:
    """Grade one student's submission in ``job.submitted_dir`` and commit the result under ``job.out_dir``."""
    job = job or _WORKER["job"]
    tasks = _WORKER["tasks"] if tasks is None else tasks
    assignment = job.assignment(assignment_name)
    return grade_folder(assignment, student, job.submitted_dir / student / assignment.name, fp, job, tasks,
                        job.out_dir / student / assignment.name)


def _grade_in_worker(assignment: str, student: str, fp: str) -> StudentResult:
    return grade_one(assignment, student, fp)


# ------------------------------------------------------------------------------------------------
# The batch
# ------------------------------------------------------------------------------------------------
@dataclass
class BatchReport:
    """What one run of the batch did."""

    assignment: str
    results: list[StudentResult]  # every student asked for, graded now or earlier, by student
    graded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    workers: int = 1

    @property
    def internal_errors(self) -> list[str]:
        """Students whose result the grader failed to produce (graded again on the next run)."""
        return [r.student for r in self.results if r.internal_errors]

    def summary_lines(self) -> list[str]:
        s = summary.stats(self.results)
        lines = [f"{self.assignment}: {len(self.graded)} graded, {len(self.skipped)} unchanged (skipped), "
                 f"wall time {self.wall_s:.1f} s " + (f"with {self.workers} worker(s)" if self.workers else "(no workers needed)")]
        if self.internal_errors:
            lines.append(f"  INTERNAL GRADER ERRORS: {len(self.internal_errors)} ({', '.join(self.internal_errors[:10])}); "
                         "not kept as done, the next run grades them again; tell the kit's maintainers")
        if self.results:
            lines.append(f"  mean {s['mean']:.2f} / {s['max_score']:g}, median {s['median']:.2f}, "
                         f"full marks {s['full_marks']}, zero {s['zero']}")
            failed = ", ".join(f"{cid} {n}" for cid, n in s["failed_checks"]) or "none"
            lines.append(f"  failures per check: {failed}")
            limits = ", ".join(f"{name} {n}" for name, n in s["limits_hit"]) or "none"
            lines.append(f"  time and memory limits hit: {limits}")
        return lines


def discover(submitted_dir: Path, students: list[str] | None = None) -> list[str]:
    """Student folders in nbgrader's ``submitted/`` layout (or just ``students``), sorted."""
    if students:
        return list(dict.fromkeys(students))
    return sorted(p.name for p in submitted_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


class Progress:
    """A tqdm bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, log, label: str):
        self.total, self.log, self.done, self.failures = total, log, 0, 0
        self.bar = None
        if total and hasattr(log, "isatty") and log.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=log, desc=label, unit="sub", dynamic_ncols=True)

    def update(self, result: StudentResult) -> None:
        self.done += 1
        self.failures += result.score < result.max_score
        if self.bar is not None:
            self.bar.set_postfix(below_full=self.failures, refresh=False)
            self.bar.update(1)
        else:
            print(f"  [{self.done}/{self.total}] {result.student}: {result.score:g}/{result.max_score:g} "
                  f"({result.seconds:.1f} s)", file=self.log, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def grade(
    assignment_name: str,
    submitted_dir: Path,
    out_dir: Path,
    *,
    students: list[str] | None = None,
    **options,
) -> BatchReport:
    """Grade ``submitted_dir/<student>/<assignment_name>/`` for every student (or ``students``) into ``out_dir``.

    Options: ``execute``, ``profile_name``, ``backend``, ``workers`` (default: the number of cores),
    ``regrade``, ``strict``, ``cluster``, ``insecure``, ``gpus_per_task``, ``log`` (see :func:`grade_assignments`).
    """
    (report,) = grade_assignments({assignment_name: students}, submitted_dir, out_dir, **options)
    return report


def grade_assignments(
    assignments: dict[str, list[str] | None],
    submitted_dir: Path,
    out_dir: Path,
    *,
    execute: bool = False,
    profile_name: str = course_config.DEFAULT_PROFILE,
    profile: course_config.Profile | None = None,
    backend: str | None = None,
    workers: int | None = None,
    regrade: bool = False,
    strict: bool | None = None,
    cluster: str | None = None,
    insecure: bool = False,
    gpus_per_task: int = 0,
    pseudonyms: dict[str, str] | None = None,
    log=sys.stderr,
) -> list[BatchReport]:
    """Grade several assignments in one pool of workers: ``{assignment: students or None for all}``.

    Submissions are handed to the workers in the order given (assignments, then students). ``cluster``
    (the credentials file :func:`autograder.serve.serve` wrote, a Dask scheduler's ``tls://`` address, or
    ``local:N``) grades them as Dask tasks instead (:mod:`autograder.cluster`), each asking for ``gpus_per_task``
    GPUs; ``insecure`` allows an unencrypted ``tcp://`` scheduler.
    ``strict`` (default: course_config.LIMITS.require_kernel_limits) refuses to grade, before anything
    is run, unless the kernel enforces every sandbox limit; otherwise each one it does not is warned about.
    ``profile``, if given, is used instead of the named one (e.g. a profile with another time limit: it is part
    of every result's fingerprint).
    """
    start = time.monotonic()
    profile = profile or course_config.profile(profile_name)
    chosen = [course_config.assignment(name) for name in assignments]
    submitted_dir, out_dir = Path(submitted_dir).resolve(), Path(out_dir).resolve()
    if not submitted_dir.is_dir():
        raise FileNotFoundError(f"submitted folder {submitted_dir} does not exist")
    if workers is not None and workers < 1:
        raise ValueError("--workers must be at least 1")
    backend = backend or sandbox.default_backend()
    strict = course_config.LIMITS.require_kernel_limits if strict is None else strict
    sandbox.preflight(backend, strict, lambda line: print(line, file=log, flush=True))
    if gpus_per_task and not cluster:
        raise ValueError("--gpus-per-task needs --cluster (a Dask cluster whose workers have GPU resources)")
    if gpus_per_task and not execute:
        raise ValueError("--gpus-per-task is for re-running notebooks (--execute, or --audit's re-runs); saved "
                         "models are graded on CPUs")
    if cluster:
        from autograder.cluster import check_address

        check_address(cluster, insecure)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {a.name: discover(submitted_dir, assignments[a.name]) for a in chosen}
    total = sum(len(v) for v in names.values())
    tasks: dict = {}
    records: dict[str, dict[str, StudentResult]] = {}
    done: dict[str, dict[str, StudentResult]] = {}
    todo: list[tuple[str, str, str]] = []
    data_of: dict[str, str] = {}
    executor = None
    try:
        for a in chosen:
            config, data = config_digest(a, profile, execute), task_for(a, profile, tasks).fingerprint()
            data_of[a.name] = data
            # Every committed record of this assignment (grades.csv lists them all), then this run's.
            records[a.name] = {r.student: r for r in load_records(out_dir, a.name)}
            done[a.name] = {}
            for student in names[a.name]:
                fp = fingerprint(submitted_dir / student / a.name, config, data)
                previous = None if regrade else records[a.name].get(student)
                # A result the grader failed to produce is never reused: it is graded again.
                if previous is not None and previous.fingerprint == fp and not previous.internal_errors:
                    done[a.name][student] = previous
                else:
                    todo.append((a.name, student, fp))
        # Workers are started (and a cluster reached) only when there is something to grade.
        if cluster and todo:
            from autograder.cluster import DaskExecutor

            executor = DaskExecutor(cluster, gpus_per_task=gpus_per_task, log=log)
        else:
            executor = LocalPool(min(workers or default_workers(), max(1, len(todo))))
        job = Job(profile, execute, backend, submitted_dir, out_dir, threads=executor.threads(),
                  gpus=gpus_per_task, limits=course_config.LIMITS, assignments={a.name: a for a in chosen})
        caveats = set() if execute else {c for c in (t.saved_model_caveat() for t in tasks.values()) if c}
        for caveat in sorted(caveats):
            print(f"WARNING: {caveat}", file=log, flush=True)
        mode = f"re-executing notebooks, profile {profile.name}" if execute else f"grading saved models, profile {profile.name}"
        skipped = total - len(todo)
        if todo:
            executor.check(job, [a for a in chosen if any(name == a.name for name, _, _ in todo)], data_of, strict)
        print(f"grading {', '.join(names)}: {len(todo)} to grade, {skipped} unchanged; {mode}; "
              f"sandbox {backend}; {executor.describe() if todo else 'no workers started'}", file=log, flush=True)
        progress = Progress(len(todo), log, "/".join(names))
        try:
            for result in executor.run(todo, job, tasks):
                done[result.assignment][result.student] = records[result.assignment][result.student] = result
                progress.update(result)
                grades_csv.write(sorted(records[result.assignment].values(), key=lambda r: r.student),
                                 out_dir / grades_csv.GRADES_FILE)
        finally:
            progress.close()
    finally:
        if executor is not None:
            workers = executor.used() if todo else 0  # the workers that graded this run
            executor.close()
        for task in tasks.values():
            task.close()
    wall = time.monotonic() - start
    reports = []
    for a in chosen:
        graded = [s for name, s, _ in todo if name == a.name]
        report = BatchReport(a.name, [done[a.name][s] for s in names[a.name] if s in done[a.name]], graded=graded,
                             skipped=[s for s in names[a.name] if s not in graded], wall_s=wall, workers=workers)
        everyone = sorted(records[a.name].values(), key=lambda r: r.student)
        grades_csv.write(everyone, out_dir / grades_csv.GRADES_FILE)
        task = tasks.get((a.dataset, a.test_sets, profile.name))
        caveat = None if execute or task is None else task.saved_model_caveat()
        similar = class_report(a, profile, out_dir, task, pseudonyms, everyone, log)
        summary.write(everyone, a.name, out_dir, run={"graded": len(report.graded), "skipped": len(report.skipped),
                                                      "wall_s": wall, "workers": workers,
                                                      **({"warnings": [caveat]} if caveat else {}),
                                                      **({"similar": similar} if similar is not None else {})})
        for line in report.summary_lines():
            print(line, file=log)
        reports.append(report)
    return reports


def class_report(assignment: course_config.Assignment, profile: course_config.Profile, out_dir: Path, task,
                 pseudonyms: dict[str, str] | None, results: list[StudentResult], log) -> int | None:
    """The class's similarity report and leaderboard (:mod:`autograder.classwide`); the number of flagged pairs.

    Written from the committed results: a failure here costs nobody a grade, it is said and the batch ends as
    it would have."""
    if task is None:
        return None
    from autograder import classwide

    try:
        found = classwide.report(assignment, profile, out_dir, task, chosen=pseudonyms, results=results)
    except Exception as exc:  # the grades are committed; the staff's report is not worth a lost run
        traceback.print_exc(file=log)
        print(f"WARNING: the class report of {assignment.name} failed ({type(exc).__name__}: {exc}); the grades stand",
              file=log, flush=True)
        return None
    if found["flagged"]:
        print(f"{assignment.name}: {len(found['flagged'])} pair(s) of similar models flagged for a look: "
              f"{out_dir / 'similarity.md'}", file=log, flush=True)
    return len(found["flagged"])


class LocalPool:
    """The default executor: this process (one worker) or a pool of worker processes on this machine.

    An executor runs the batch's submissions and yields each result once it is committed under the
    output folder; :mod:`autograder.cluster` has the Dask one (``--cluster``), with the same interface.
    """

    def __init__(self, workers: int):
        self.workers = workers

    def describe(self) -> str:
        return f"{self.workers} worker(s)"

    def threads(self) -> int:
        """Threads each job's numerical libraries may use (several jobs share this machine's cores)."""
        return max(1, default_workers() // self.workers) if self.workers > 1 else 0

    def check(self, job: Job, chosen: list, data: dict[str, str], strict: bool) -> None:
        """Refuse the batch (RuntimeError) if a worker cannot grade it as this process would: nothing to check here."""

    def run(self, todo: list[tuple[str, str, str]], job: Job, tasks: dict):
        yield from _run(todo, job, tasks, self.workers)

    def used(self) -> int:
        """The workers that graded this run (the pool's size: it is sized to the submissions)."""
        return self.workers

    def close(self) -> None:
        pass


def _run(todo: list[tuple[str, str, str]], job: Job, tasks: dict, workers: int):
    """Yield results as they are committed: in this process (one worker) or in a pool of processes."""
    if not todo:
        return
    if workers == 1:
        for assignment, student, fp in todo:
            yield grade_one(assignment, student, fp, job, tasks)
        return
    remaining = {(a, s): fp for a, s, fp in todo}
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"),
                                 initializer=_start_worker, initargs=(job,)) as pool:
            futures = [pool.submit(_grade_in_worker, a, s, fp) for a, s, fp in todo]
            for future in as_completed(futures):
                result = future.result()
                remaining.pop((result.assignment, result.student), None)
                yield result
    except BrokenProcessPool:
        # A worker died (not a student's sandbox: the grader itself). Grade what is left one at a
        # time, each in a process of its own, so that only a submission that kills its own
        # process loses its result, with a message saying so.
        for (assignment, student), fp in list(remaining.items()):
            try:
                with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                         initializer=_start_worker, initargs=(job,)) as pool:
                    result = pool.submit(_grade_in_worker, assignment, student, fp).result()
            except BrokenProcessPool:
                result = failed_result(student, job.assignment(assignment), "internal grader error: the "
                                       "grading process died while grading this submission; tell your instructor",
                                       internal=True)
                write_student_files(result, job.out_dir / student / assignment)  # retried next run
            yield result
