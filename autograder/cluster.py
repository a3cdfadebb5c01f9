"""Grading a batch on a Dask cluster (``autograder grade ... --cluster ADDRESS|local:N``).

The batch stays the client's: it finds the submissions, skips what is unchanged, and commits each
result under the output folder as it comes back, as with the local pool. Only the grading of one
submission runs on a Dask worker, the same :func:`autograder.worker.grade_folder` the pool runs, with
every student job in the same sandbox, a child process of the worker (so a student's code that
crashes, hangs or eats memory never kills the worker).

What travels: each submission as bytes (:func:`autograder.grading.files.pack`, the files the grader
takes, within the course's size limit: no shared file system is assumed for submissions); back, the
result and the student's files (results.json, feedback pages, the executed notebook) as bytes. Test
labels never travel: each worker loads the hidden test data itself, from its own ``COURSE_DATA_DIR``
(a shared file system, as on a batch cluster), and before anything is graded every worker must show
the client's kit version (code digest), the same test data (fingerprint) and, in strict mode, a
sandbox whose limits the kernel enforces. A mismatch refuses the batch, naming the worker.

A worker that dies (killed, node lost) has its task rescheduled by Dask; a submission whose grading
kills workers again and again (Dask's ``distributed.scheduler.allowed-failures``) gets an internal
grader error of its own, graded again on the next run, and costs nobody else their result.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import course_config
from autograder.results import RECORD_FILE, StudentResult, failed_result

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 60  # how long to try reaching a remote scheduler
WAIT_FOR_WORKERS_S = 600  # how long a scheduler without workers is given for its first one to join
_TASKS: dict = {}  # per worker process: the hidden test data, loaded once per (dataset, test sets, profile)


def worker_facts(assignments: list[str], profile_name: str, backend: str | None, execute: bool = False) -> dict:
    """On a worker: its kit version, its course facts (course_config) per assignment, its sandbox and what
    it does not enforce, its test data's fingerprints."""
    from autograder import sandbox, worker

    facts = {"kit": worker.kit_version(), "host": os.uname().nodename, "pid": os.getpid(), "data": {}, "problems": {},
             "config": {}}
    try:
        facts["backend"] = backend or sandbox.default_backend()
        facts["weak"] = sandbox.strict_problems(facts["backend"])
    except (RuntimeError, ValueError) as exc:
        facts["backend"], facts["weak"] = None, [str(exc)]
    for name in assignments:
        try:
            profile, assignment = course_config.profile(profile_name), course_config.assignment(name)
        except (KeyError, ValueError) as exc:  # a course_config without this assignment or profile
            facts["config"][name] = f"none ({type(exc).__name__}: {exc})"
            continue
        facts["config"][name] = worker.config_digest(assignment, profile, execute)
        try:
            facts["data"][name] = worker.task_for(assignment, profile, _TASKS).fingerprint()
        except Exception as exc:  # say what the worker could not load, not only that it differs
            facts["problems"][name] = f"{type(exc).__name__}: {str(exc)[:300]}"
    return facts


def gpu_facts(backend: str | None) -> dict:
    """On a worker: whether a sandboxed child there can use its GPUs (:func:`autograder.sandbox.enforcement.gpu_check`)."""
    from autograder.sandbox.enforcement import gpu_check

    facts = {"host": os.uname().nodename, "pid": os.getpid()}
    try:
        facts.update(gpu_check(backend))
    except Exception as exc:  # the worker's own failure, named in the refusal
        facts["problem"] = f"the GPU check failed there ({type(exc).__name__}: {str(exc)[:300]})"
    return facts


def check_address(address: str) -> None:
    """Refuse a ``--cluster`` value that is neither ``local:N`` (N >= 1) nor a scheduler's address."""
    if address.startswith(LOCAL_PREFIX):
        n = address[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--cluster {address}: give local:N with N >= 1 worker processes")
    elif "://" not in address and ":" not in address:
        raise ValueError(f"--cluster {address}: give a Dask scheduler's address (tcp://host:8786) or local:N")


def grade_packed(assignment_name: str, student: str, fp: str, packed: bytes, job) -> tuple[dict, dict[str, bytes]]:
    """On a worker: grade one packed submission; the result and the student's files, as bytes."""
    from autograder import worker
    from autograder.grading import files

    assignment = course_config.assignment(assignment_name)
    if job.threads < 0:  # share the cores this worker may use (its batch job's) between the tasks it runs at once
        from distributed import get_worker

        state = get_worker().state
        at_once = state.nthreads
        if job.gpus:  # GPU tasks: as many at once as the worker's GPU resources allow
            at_once = min(at_once, int(state.total_resources.get("GPU", 0) // job.gpus))
        job = dataclasses.replace(job, threads=max(1, worker.default_workers() // max(1, at_once)))
    with tempfile.TemporaryDirectory(prefix="autograder-cluster-") as tmp:
        src, keep = Path(tmp) / "submission", Path(tmp) / "out"
        src.mkdir()
        try:
            notes = files.unpack(packed, src, job.limits.max_submission_mb)
        except (ValueError, OSError) as exc:
            result = failed_result(student, assignment, f"the submission could not be unpacked on the grader ({exc})")
            result.fingerprint = fp
            worker.write_student_files(result, keep)
        else:
            result = worker.grade_folder(assignment, student, src, fp, job, _TASKS, keep, tuple(notes))
        back = {str(p.relative_to(keep)): p.read_bytes() for p in sorted(keep.rglob("*")) if p.is_file()}
    return result.to_dict(), back


def commit(result: dict, back: dict[str, bytes], folder: Path) -> StudentResult:
    """On the client: write a student's files that came back, the record that says they are complete last."""
    from autograder.worker import clear_run_files

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(course_config.assignment(result["assignment"]), folder)
    for rel in sorted(back, key=lambda r: r == RECORD_FILE):
        target = (folder / rel).resolve()
        if folder not in target.parents:
            raise ValueError(f"a worker sent back {rel!r}, outside the student's folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_bytes(back[rel])
        os.replace(tmp, target)
    if RECORD_FILE not in back:
        raise ValueError("a worker sent back a result without its record")
    return StudentResult.from_dict(result)


class DaskExecutor:
    """Runs the batch's submissions as Dask tasks, on the scheduler at ``address`` or on ``local:N`` processes."""

    def __init__(self, address: str, *, gpus_per_task: int = 0, log=sys.stderr):
        from distributed import Client, LocalCluster

        self.address, self.gpus_per_task, self.log = address, gpus_per_task, log
        self.local = None
        check_address(address)
        if address.startswith(LOCAL_PREFIX):
            n = address[len(LOCAL_PREFIX):]
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the workers inherit this environment
            # Every scheduler and worker of a local cluster listens on 127.0.0.1 only, the scheduler's HTTP server
            # too (Dask starts one even with dashboard_address=None, then on port 8787): a free port there.
            self.local = LocalCluster(n_workers=int(n), threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address="127.0.0.1:0", silence_logs=40,
                                      resources={"GPU": gpus_per_task} if gpus_per_task else None)
            self.client = Client(self.local)
        else:
            try:
                self.client = Client(address, timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                raise RuntimeError(f"cannot reach the Dask scheduler at {address} ({exc}): is it running, and can this "
                                   "machine reach it? Nothing was graded") from exc
        if not self.local and not self.client.nthreads():
            # A batch system starts workers when it gets to their jobs: wait for the first one.
            print(f"waiting up to {WAIT_FOR_WORKERS_S} s for the first worker to join {address} ...", file=log, flush=True)
            try:
                self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError as exc:
                self.client.close()
                raise RuntimeError(f"no worker joined the Dask cluster at {address} within {WAIT_FOR_WORKERS_S} s "
                                   "(are the worker jobs queued or running?); nothing was graded") from exc
        self.workers = self.count_workers()

    def count_workers(self) -> int:
        """The workers the scheduler knows now (at least 1).

        Asked after every result while submissions are pending, so it asks for the workers' addresses
        only (``Client.nthreads``), not ``scheduler_info``'s metrics of every worker."""
        return max(1, len(self.client.nthreads()))

    def describe(self) -> str:
        where = f"a local Dask cluster of {self.workers} worker process(es)" if self.local else (
            f"Dask cluster {self.address} ({self.workers} worker(s))")
        return where + (f", {self.gpus_per_task} GPU(s) a task" if self.gpus_per_task else "")

    def threads(self) -> int:
        """Threads a job's numerical libraries may use: this machine's cores shared by the local workers, or
        (-1) each remote worker's cores shared between the tasks it runs at once (see :func:`grade_packed`)."""
        from autograder.worker import default_workers

        return max(1, default_workers() // self.workers) if self.local else -1

    def check(self, job, chosen: list, data: dict[str, str], strict: bool) -> None:
        """Refuse the batch unless every worker has this kit, these course facts, this test data and, in strict
        mode, kernel limits."""
        from autograder.worker import config_digest, kit_version

        names = [a.name for a in chosen]
        config = {a.name: config_digest(a, job.profile, job.execute) for a in chosen}
        facts = self.client.run(worker_facts, names, job.profile.name, None, job.execute)
        if not facts:
            raise RuntimeError(f"the Dask cluster at {self.address} has no workers")
        kit, problems = kit_version(), []
        for worker, f in sorted(facts.items()):
            who = f"worker {worker} (host {f['host']}, pid {f['pid']})"
            if f["kit"] != kit:
                problems.append(f"{who} runs kit {f['kit']}, this grader {kit}: install the same kit on every worker")
            for name in names:
                if f["config"].get(name) != config[name]:
                    problems.append(f"{who} grades {name} by other course facts (course_config digest "
                                    f"{f['config'].get(name)}, this grader {config[name]}: thresholds, points, profiles "
                                    "or limits differ): give every worker this course_config.py")
                if name in f["problems"]:
                    problems.append(f"{who} cannot load {name}'s test data: {f['problems'][name]} (set COURSE_DATA_DIR "
                                    "on the worker to a folder with the course's data)")
                elif f["data"].get(name) != data[name]:
                    problems.append(f"{who} has other test data for {name} (fingerprint {f['data'].get(name)}, this "
                                    f"grader {data[name]}): its COURSE_DATA_DIR holds other files")
            if f["backend"] is None or (strict and f["weak"]):
                problems.append(f"{who}: the kernel does not enforce these sandbox limits there: " + "; ".join(f["weak"]))
        if self.gpus_per_task:
            problems += self.gpu_problems()
        if problems:
            raise RuntimeError("the cluster's workers cannot grade this batch as this grader would, so nothing was "
                               "graded:\n  " + "\n  ".join(problems))

    def gpu_problems(self) -> list[str]:
        """Why the workers offering GPUs cannot run a GPU task in their sandbox; one line if none offers them."""
        n = self.gpus_per_task
        offering = [w for w, info in self.client.scheduler_info(n_workers=-1)["workers"].items()
                    if info.get("resources", {}).get("GPU", 0) >= n]
        if not offering:
            return [f"no worker of the cluster offers {n} GPU(s) (Dask resource GPU={n} or more), so no task could "
                    "ever start: start the GPU nodes' workers with --resources GPU=<their GPUs>, or grade without "
                    "--gpus-per-task"]
        problems = []
        for worker, f in sorted(self.client.run(gpu_facts, None, workers=offering).items()):
            if f["problem"]:
                problems.append(f"worker {worker} (host {f['host']}, pid {f['pid']}) offers GPU resources, but a "
                                f"sandboxed notebook there could not use a GPU: {f['problem']}")
        return problems

    def run(self, todo: list[tuple[str, str, str]], job, tasks: dict):
        """Submit the submissions as tasks, a window at a time; yield each result once committed by this process."""
        from distributed import as_completed

        from autograder.grading import files
        from autograder.worker import grade_folder, write_student_files

        if not todo:
            return
        remote_job = dataclasses.replace(job, backend=None)  # each worker uses its own best sandbox
        resources = {"GPU": self.gpus_per_task} if self.gpus_per_task else None
        pending = list(todo)
        futures: dict = {}
        running = as_completed()

        def submit_more():
            # Submissions packed and in flight at once (the client holds their bytes): 4 per worker, counting
            # the workers that join while the batch runs (a batch system starts them one by one).
            window = 4 * (self.count_workers() if pending else 1)
            while pending and len(futures) < window:
                assignment, student, fp = pending.pop(0)
                src = job.submitted_dir / student / assignment
                if not src.is_dir():  # nothing to send: graded here, as the pool grades a missing folder
                    yield grade_folder(course_config.assignment(assignment), student, src, fp, job, tasks,
                                       job.out_dir / student / assignment)
                    continue
                packed = files.pack(src, job.limits.max_submission_mb)
                future = self.client.submit(grade_packed, assignment, student, fp, packed, remote_job, pure=False,
                                            key=f"grade-{assignment}-{student}-{fp[-16:]}", resources=resources)
                futures[future] = (assignment, student, fp)
                running.add(future)

        yield from submit_more()
        for future in running:
            assignment, student, fp = futures.pop(future)
            folder = job.out_dir / student / assignment
            try:
                result, back = future.result()
                result = commit(result, back, folder)
            except Exception as exc:  # KilledWorker after Dask's allowed failures, a lost connection, ...
                name = type(exc).__name__
                why = ("the grading worker died again and again while grading this submission" if name == "KilledWorker"
                       else f"the cluster could not grade this submission ({name}: {str(exc)[:200]})")
                result = failed_result(student, course_config.assignment(assignment),
                                       f"internal grader error: {why}; tell your instructor", internal=True)
                result.fingerprint = fp
                write_student_files(result, folder)  # retried next run
            future.release()
            yield result
            yield from submit_more()

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()
