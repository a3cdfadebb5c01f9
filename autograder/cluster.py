"""Grading a batch on a Dask cluster (``autograder grade ... --cluster CREDENTIALS|tls://ADDRESS|local:N``).

The batch stays the client's: it finds the submissions, skips what is unchanged, and commits each
result under the output folder as it comes back, as with the local pool. Only the grading of one
submission runs on a Dask worker, the same :func:`autograder.worker.grade_folder` the pool runs, with
every student job in the same sandbox, a child process of the worker (so a student's code that
crashes, hangs or eats memory never kills the worker).

What travels: each submission as bytes (:func:`autograder.grading.files.pack`, the files the grader
takes, within the course's size limit: no shared file system is assumed for submissions); back, the
result and the student's files (results.json, feedback pages, the executed notebook) as bytes. Test
labels never travel: each worker loads the hidden test data itself, from its own ``COURSE_DATA_DIR``.

No result from a worker that would grade otherwise. Every worker, however late it joins, is verified
before its first task: its kit version (code digest), its course facts (course_config digest per
assignment), its test data (fingerprint), a sandbox whose limits its kernel enforces (in strict mode)
and, when tasks ask for GPUs, a GPU its sandbox can use (:meth:`DaskExecutor.admit`). Tasks go only to
verified workers; each task also carries the digests and checks them again on its worker before it
grades, and the client commits a result only from a verified worker that says it matched. A refused
worker is named with what differs, and its submissions are graded elsewhere. Each result records the
worker that graded it (``extra["grader"]``).

Workers come and go: a worker that dies has its task rescheduled by Dask; a submission whose grading
kills workers again and again (``distributed.scheduler.allowed-failures``) gets an internal grader error
of its own, graded again on the next run. When no verified worker is left, the grader says so at once,
waits for one as long as for the first (:data:`WAIT_FOR_WORKERS_S`), then stops with an error, everything
graded so far kept.

The connection is encrypted and authenticated (TLS, both ends holding the batch's certificates): the
credentials file :func:`autograder.serve.serve` writes, a ``tls://`` address with Dask's TLS settings, or
``local:N`` (its own temporary certificates). A ``tcp://`` scheduler is refused unless ``insecure``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import course_config
from autograder.results import RECORD_FILE, StudentResult, failed_result
from autograder.similarity import EVIDENCE_FILE

LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 60  # how long to try reaching a remote scheduler
WAIT_FOR_WORKERS_S = 600  # how long the grader waits for a worker when it has none (at the start, or all left)
POLL_S = 1.0  # how often the client looks at the workers while it waits for results
_TASKS: dict = {}  # per worker process: the hidden test data, loaded once per (dataset, test sets, profile)
_VERDICTS: dict[str, list[str]] = {}  # per worker process: what differs from each batch's expectations


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


def expectations(job, chosen: list, data: dict[str, str], strict: bool) -> dict:
    """What a worker must show to grade this batch: the client's kit, course facts and test data, and the
    sandbox mode; ``id`` is their digest, the name a task and its result carry."""
    from autograder.worker import config_digest, kit_version

    names = [a.name for a in chosen]
    expected = {"kit": kit_version(), "assignments": names, "profile": job.profile.name, "execute": job.execute,
                "config": {a.name: config_digest(a, job.profile, job.execute) for a in chosen},
                "data": {name: data[name] for name in names}, "strict": bool(strict)}
    expected["id"] = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
    return expected


def differences(facts: dict, expected: dict) -> list[str]:
    """What in a worker's :func:`worker_facts` differs from ``expected`` (:func:`expectations`), each with its fix."""
    problems = []
    if facts["kit"] != expected["kit"]:
        problems.append(f"runs kit {facts['kit']}, this grader {expected['kit']}: install the same kit on every worker")
    for name in expected["assignments"]:
        config = expected["config"][name]
        if facts["config"].get(name) != config:
            problems.append(f"grades {name} by other course facts (course_config digest {facts['config'].get(name)}, "
                            f"this grader {config}: thresholds, points, profiles or limits differ): give every "
                            "worker this course_config.py")
        if name in facts["problems"]:
            problems.append(f"cannot load {name}'s test data: {facts['problems'][name]} (set COURSE_DATA_DIR on the "
                            "worker to a folder with the course's data)")
        elif facts["data"].get(name) != expected["data"][name]:
            problems.append(f"has other test data for {name} (fingerprint {facts['data'].get(name)}, this grader "
                            f"{expected['data'][name]}): its COURSE_DATA_DIR holds other files")
    if facts["backend"] is None or (expected["strict"] and facts["weak"]):
        problems.append("the kernel does not enforce these sandbox limits there: " + "; ".join(facts["weak"]))
    return problems


def verify_here(expected: dict) -> list[str]:
    """On a worker: what differs from ``expected``, found once per worker process and batch."""
    if expected["id"] not in _VERDICTS:
        facts = worker_facts(expected["assignments"], expected["profile"], None, expected["execute"])
        _VERDICTS[expected["id"]] = differences(facts, expected)
    return _VERDICTS[expected["id"]]


def check_address(address: str, insecure: bool = False) -> None:
    """Refuse a ``--cluster`` value that is not ``local:N`` (N >= 1), a credentials file or a TLS scheduler address
    (a ``tcp://`` one only with ``insecure``)."""
    if address.startswith(LOCAL_PREFIX):
        n = address[len(LOCAL_PREFIX):]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--cluster {address}: give local:N with N >= 1 worker processes")
    elif "://" in address:
        if not address.startswith("tls://") and not insecure:
            raise ValueError(
                f"--cluster {address}: an unencrypted scheduler, which anyone who can reach it can use to run code as "
                "the grader on workers that hold the hidden test labels. Give the credentials file serve(cluster, ...) "
                "wrote (README: On a cluster), or a tls:// address with Dask's TLS settings; --insecure connects anyway")
    elif not Path(address).expanduser().is_file():
        raise ValueError(f"--cluster {address}: give the credentials file serve(cluster, ...) wrote, a Dask scheduler's "
                         "tls:// address, or local:N")


def grade_packed(assignment_name: str, student: str, fp: str, packed: bytes, job, expected: dict) -> dict:
    """On a worker: check it still matches ``expected``, then grade one packed submission.

    Returns the result and the student's files as bytes, with the worker that graded them; or, where the
    worker differs from ``expected``, ``refused`` and why (nothing graded)."""
    from distributed import get_worker

    from autograder import worker
    from autograder.grading import files

    me = get_worker()
    where = {"worker": me.address, "host": os.uname().nodename}  # kept in the result
    problems = verify_here(expected)
    if problems:
        return {"refused": problems, "grader": {**where, "pid": os.getpid(), "verified": None}}
    assignment = job.assignment(assignment_name)
    if job.threads < 0:  # share the cores this worker may use (its batch job's) between the tasks it runs at once
        state = me.state
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
            result.extra["grader"] = where
            worker.write_student_files(result, keep)
        else:
            result = worker.grade_folder(assignment, student, src, fp, job, _TASKS, keep, tuple(notes), grader=where)
        back = {str(p.relative_to(keep)): p.read_bytes() for p in sorted(keep.rglob("*")) if p.is_file()}
    return {"result": result.to_dict(), "back": back, "grader": {**where, "pid": os.getpid(), "verified": expected["id"]}}


def commit(result: dict, back: dict[str, bytes], folder: Path, assignment: course_config.Assignment) -> StudentResult:
    """On the client: write a student's files that came back, the record that says they are complete last."""
    from autograder.worker import clear_run_files

    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    clear_run_files(assignment, folder)
    (folder / EVIDENCE_FILE).unlink(missing_ok=True)  # an earlier grading's, where this one kept none
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


def connect(address: str, gpus_per_task: int = 0):
    """A Dask client for ``--cluster`` (see :func:`check_address`), and the local cluster it started, if any (its
    workers offering ``gpus_per_task`` GPUs each)."""
    from distributed import Client, LocalCluster, Security

    if address.startswith(LOCAL_PREFIX):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the workers inherit this environment
        # Every scheduler and worker of a local cluster listens on 127.0.0.1 only, the scheduler's HTTP server
        # too (Dask starts one even with dashboard_address=None, then on port 8787): a free port there. Other
        # users of this machine can reach 127.0.0.1: TLS with certificates made for this batch keeps them out.
        local = LocalCluster(n_workers=int(address[len(LOCAL_PREFIX):]), threads_per_worker=1, processes=True,
                             host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=40,
                             security=Security.temporary(),
                             resources={"GPU": gpus_per_task} if gpus_per_task else None)
        return Client(local), local
    if "://" in address:
        where, security = address, None
    else:
        from autograder.serve import read_credentials

        where, security = read_credentials(Path(address))
    try:
        return Client(where, timeout=CONNECT_TIMEOUT_S, security=security), None
    except OSError as exc:
        tls = " (and does it accept this grader's TLS credentials?)" if where.startswith("tls://") else ""
        raise RuntimeError(f"cannot reach the Dask scheduler at {where} ({exc}): is it running, and can this machine "
                           f"reach it{tls}? Nothing was graded") from exc


def finished(futures, timeout: float) -> list:
    """The futures no longer pending, waiting up to ``timeout`` seconds for one.

    Read from each future's status: ``distributed.wait`` raises for a cancelled future and binds its wait to
    one event loop, which breaks when another client of the same process (a TA's notebook, a test) has its own."""
    deadline = time.monotonic() + timeout
    while True:
        done = [f for f in futures if f.status != "pending"]
        if done or time.monotonic() >= deadline:
            return done
        time.sleep(0.05)


class DaskExecutor:
    """Runs the batch's submissions as Dask tasks on verified workers of a scheduler, or of ``local:N`` processes."""

    def __init__(self, address: str, *, gpus_per_task: int = 0, log=sys.stderr):
        check_address(address, insecure=True)
        self.address, self.gpus_per_task, self.log = address, gpus_per_task, log
        self.client, self.local = connect(address, gpus_per_task)
        self.where = address if self.local else self.client.scheduler.address
        self.expected: dict = {}
        self.verified: set[str] = set()  # the addresses of the workers that get tasks
        self.refused: dict[str, list[str]] = {}  # worker address -> what differs
        self.names: dict[str, str] = {}  # worker address -> "worker ADDRESS (host H, pid P)", every worker seen
        self.graded_by: set[str] = set()  # the workers whose results were committed
        if not self.local and not self.client.nthreads():
            # A batch system starts workers when it gets to their jobs: wait for the first one.
            print(f"waiting up to {WAIT_FOR_WORKERS_S} s for the first worker to join {self.where} ...", file=log,
                  flush=True)
            try:
                self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError as exc:
                self.client.close()
                raise RuntimeError(f"no worker joined the Dask cluster at {self.where} within {WAIT_FOR_WORKERS_S} s "
                                   "(are the worker jobs queued or running?); nothing was graded") from exc
        self.workers = self.count_workers()

    def count_workers(self) -> int:
        """The workers the scheduler knows now (at least 1)."""
        return max(1, len(self.client.nthreads()))

    def describe(self) -> str:
        n = len(self.usable()) or self.workers
        where = f"a local Dask cluster of {n} worker process(es)" if self.local else (
            f"Dask cluster {self.where} ({n} verified worker(s))")
        return where + (f", {self.gpus_per_task} GPU(s) a task" if self.gpus_per_task else "")

    def threads(self) -> int:
        """Threads a job's numerical libraries may use: this machine's cores shared by the local workers, or
        (-1) each remote worker's cores shared between the tasks it runs at once (see :func:`grade_packed`)."""
        from autograder.worker import default_workers

        return max(1, default_workers() // self.workers) if self.local else -1

    def check(self, job, chosen: list, data: dict[str, str], strict: bool) -> None:
        """Verify the workers present now; refuse the batch if none of them can grade it as this grader would."""
        self.expected = expectations(job, chosen, data, strict)
        self.admit()
        if not self.verified:
            problems = [f"{self.names[a]}: {why}" for a, whys in sorted(self.refused.items()) for why in whys]
            raise RuntimeError("the cluster's workers cannot grade this batch as this grader would, so nothing was "
                               "graded:\n  " + "\n  ".join(problems or [f"the Dask cluster at {self.where} has no workers"]))

    def admit(self) -> None:
        """Verify the workers that joined since the last look: each is admitted (gets tasks) or refused, said out loud."""
        known = set(self.client.nthreads())
        self.verified &= known  # those that left
        new = sorted(known - self.verified - set(self.refused))
        if not new:
            return
        e = self.expected
        facts = self.client.run(worker_facts, e["assignments"], e["profile"], None, e["execute"], workers=new,
                                on_error="return")
        late = bool(self.graded_by) or bool(self.verified) or bool(self.refused)
        gpu = self.gpu_problems(new) if self.gpus_per_task else {}
        for address in new:
            f = facts.get(address)
            if isinstance(f, BaseException) or not isinstance(f, dict):
                who, whys = f"worker {address}", [f"could not report its kit and data ({type(f).__name__}: {f})"]
            else:
                who = f"worker {address} (host {f.get('host')}, pid {f.get('pid')})"
                try:
                    whys = differences(f, e)
                except (KeyError, TypeError) as exc:  # another kit answers in another form
                    whys = [f"answers the check in another form ({type(exc).__name__}: {exc}): install the same kit"]
            whys += gpu.get(address, [])
            self.names[address] = who
            if whys:
                self.refused[address] = whys
                print(f"REFUSED {who}: it grades nothing of this batch: " + "; ".join(whys), file=self.log, flush=True)
            else:
                self.verified.add(address)
                if late:
                    print(f"{who} joined and was verified: it grades too", file=self.log, flush=True)

    def gpu_problems(self, workers: list[str]) -> dict[str, list[str]]:
        """Why each of ``workers`` cannot run a GPU task in its sandbox (offers no GPU resources, or its probe fails)."""
        n = self.gpus_per_task
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        offering = [w for w in workers if info.get(w, {}).get("resources", {}).get("GPU", 0) >= n]
        problems = {w: [f"offers no {n} GPU(s) (start GPU nodes' workers with --resources GPU=<their GPUs>, or grade "
                        "without --gpus-per-task)"] for w in workers if w not in offering}
        if offering:
            for worker, f in self.client.run(gpu_facts, None, workers=offering, on_error="return").items():
                if isinstance(f, BaseException):
                    problems[worker] = [f"the GPU check failed there ({type(f).__name__}: {f})"]
                elif f["problem"]:
                    problems[worker] = [f"offers GPU resources, but a sandboxed notebook there could not use a GPU: "
                                        f"{f['problem']}"]
        return problems

    def usable(self) -> list[str]:
        return sorted(self.verified)

    def run(self, todo: list[tuple[str, str, str]], job, tasks: dict):
        """Submit the submissions as tasks to verified workers, a window at a time; yield each result once committed."""
        from autograder.grading import files
        from autograder.worker import grade_folder

        if not todo:
            return
        remote_job = dataclasses.replace(job, backend=None)  # each worker uses its own best sandbox
        resources = {"GPU": self.gpus_per_task} if self.gpus_per_task else None
        pending = deque(todo)
        futures: dict = {}  # future -> (assignment, student, fp), the workers it may run on
        alone_since = None  # when the last verified worker left
        committed = 0

        while pending or futures:
            self.admit()
            usable = self.usable()
            for future, (item, allowed) in list(futures.items()):  # every worker it could run on left: elsewhere
                if usable and not allowed & set(usable):
                    future.cancel()
                    del futures[future]
                    pending.appendleft(item)
            if not usable:
                alone_since = self.wait_alone(alone_since, committed, len(pending) + len(futures))
            elif alone_since is not None:
                print(f"{len(usable)} verified worker(s) again: grading goes on", file=self.log, flush=True)
                alone_since = None
            # Submissions packed and in flight at once (the client holds their bytes): 4 per verified worker.
            while usable and pending and len(futures) < 4 * len(usable):
                assignment, student, fp = item = pending.popleft()
                src = job.submitted_dir / student / assignment
                if not src.is_dir():  # nothing to send: graded here, as the pool grades a missing folder
                    yield grade_folder(job.assignment(assignment), student, src, fp, job, tasks,
                                       job.out_dir / student / assignment)
                    committed += 1
                    continue
                packed = files.pack(src, job.limits.max_submission_mb)
                future = self.client.submit(grade_packed, assignment, student, fp, packed, remote_job, self.expected,
                                            pure=False, key=f"grade-{assignment}-{student}-{fp[-16:]}-{time.time_ns()}",
                                            resources=resources, workers=usable, allow_other_workers=False)
                futures[future] = (item, set(usable))
            if not futures:
                time.sleep(POLL_S)
                continue
            for future in finished(futures, POLL_S):
                item, _allowed = futures.pop(future)
                if future.cancelled():  # by the scheduler (e.g. its client was briefly cut off): submitted again
                    print(f"the cluster cancelled the task of {item[1]} ({future._state.exception}): submitted again",
                          file=self.log, flush=True)
                    pending.appendleft(item)
                    continue
                result = self.receive(future, item, job)
                future.release()
                if result is None:  # refused by its worker: graded elsewhere
                    pending.appendleft(item)
                    continue
                committed += 1
                yield result

    def wait_alone(self, since: float | None, committed: int, left: int) -> float:
        """No verified worker: say so at once, then wait (:data:`WAIT_FOR_WORKERS_S`) before stopping with an error."""
        now = time.monotonic()
        if since is None:
            print(f"no verified worker is left on the Dask cluster at {self.where} ({committed} graded and kept, "
                  f"{left} to go): waiting up to {WAIT_FOR_WORKERS_S} s for one to join", file=self.log, flush=True)
            return now
        if now - since > WAIT_FOR_WORKERS_S:
            raise RuntimeError(
                f"no verified worker joined the Dask cluster at {self.where} within {WAIT_FOR_WORKERS_S} s of the "
                f"last one leaving: {committed} submission(s) graded and kept, {left} not graded. Start workers "
                "(or see why their jobs end) and run the same command again: it grades only what is missing"
                + ("\n  refused: " + "\n  refused: ".join(f"{self.names.get(a, a)}: {'; '.join(w)}"
                                                          for a, w in sorted(self.refused.items()))
                   if self.refused else ""))
        return since

    def receive(self, future, item: tuple[str, str, str], job) -> StudentResult | None:
        """Commit a finished task's result, or write an internal error; None if its worker refused the task."""
        from autograder.worker import write_student_files

        assignment, student, fp = item
        folder = job.out_dir / student / assignment
        try:
            answer = future.result()
            if not isinstance(answer, dict) or "grader" not in answer:
                raise TypeError(f"the worker answered {type(answer).__name__}, not this kit's answer: another kit")
            grader = answer["grader"]
            if "refused" in answer or grader.get("verified") != self.expected["id"] or \
                    grader.get("worker") not in self.verified:
                whys = answer.get("refused") or ["its result does not say it was graded by this batch's kit, course "
                                                 "facts and data"]
                self.refused[grader.get("worker", "?")] = whys
                self.verified.discard(grader.get("worker"))
                print(f"REFUSED worker {grader.get('worker')} (host {grader.get('host')}): its result for {student} "
                      f"is not kept and is graded elsewhere: " + "; ".join(whys), file=self.log, flush=True)
                return None
            result = commit(answer["result"], answer["back"], folder, job.assignment(assignment))
            self.graded_by.add(grader["worker"])
            return result
        except Exception as exc:  # KilledWorker after Dask's allowed failures, a lost connection, ...
            name = type(exc).__name__
            why = ("the grading worker died again and again while grading this submission" if name == "KilledWorker"
                   else f"the cluster could not grade this submission ({name}: {str(exc)[:200]})")
            result = failed_result(student, job.assignment(assignment),
                                   f"internal grader error: {why}; tell your instructor", internal=True)
            result.fingerprint = fp
            write_student_files(result, folder)  # retried next run
            return result

    def used(self) -> int:
        """The workers whose results this batch committed."""
        return len(self.graded_by)

    def close(self) -> None:
        self.client.close()
        if self.local is not None:
            self.local.close()
