"""Submissions graded per minute: our grader on saved models against ``nbgrader autograde``.

One run, one class of ``mnist_cnn`` students, on this machine:

1. an nbgrader course in a scratch folder whose source notebook carries the ``quick`` parameters
   (EPOCHS = 2), released with ``nbgrader generate_assignment``;
2. the class: ``--students`` distinct valid submissions (the solution notebook, each student with
   a seed of their own set in the ``build_model`` cell, so every model differs) and three broken
   ones (the untouched release, a CNN without pooling, a typo that raises);
3. ``nbgrader autograde`` on the whole class, timed: it executes every notebook (and so trains and
   saves every student's model);
4. our grader on the same students' notebooks and the models their runs saved
   (``autograder grade mnist_cnn ... --profile quick``, saved-model mode, default workers), timed
   as a user runs it: the whole command, process start included, and when each result came;
5. where one submission's time goes: the prediction job's steps from the child's own clock (sandbox
   and interpreter start, imports, reading the model, the forward pass, writing the outputs, exit),
   the rest of ``grade_submission`` in the trusted process (copying the submission, reading the
   architecture, the checks, the aggregates), and writing the student's results (timed here, in this
   process, on the same records).

Prints submissions per minute for both and their ratio and the breakdown, and records them in
``docs/grading_throughput.md``.

    python bench/grading_throughput.py              # 24 valid + 3 broken students
    python bench/grading_throughput.py --students 4 # a quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe as describe_machine  # noqa: E402  (bench/machine.py)

import course_config  # noqa: E402
from autograder import release  # noqa: E402
from autograder.release import runnable_solution  # noqa: E402

ASSIGNMENT = course_config.MNIST_CNN
DOCS = course_config.COURSE_DIR / "docs"
NBGRADER_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "throughput"
c.ExecutePreprocessor.timeout = 900
"""
BROKEN = {
    "broken_untouched": None,  # the release notebook as handed out
    "broken_no_pooling": ("build_model", "keras.layers.MaxPooling2D(pool_size=2),\n", ""),
    "broken_typo": ("build_model", "keras.layers.Conv2D(24,", "keras.layers.Conv2d(24,"),
}


def nbgrader(course: Path, *args: str) -> None:
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=course, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{res.stdout}{res.stderr}")


def make_course(course: Path, parameters: dict) -> None:
    """An nbgrader course whose source notebook has ``parameters`` (the quick profile's)."""
    import nbformat

    name = ASSIGNMENT.name
    shutil.copytree(course_config.COURSE_DIR / "source" / name, course / "source" / name,
                    ignore=shutil.ignore_patterns(*release.IGNORED))
    (course / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    path = course / "source" / name / ASSIGNMENT.notebook
    nb = nbformat.read(path, as_version=4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for var, value in parameters.items():
        lines = [f"{var} = {value!r}" if line.startswith(f"{var} = ") else line for line in params.source.splitlines()]
        params.source = "\n".join(lines)
    nbformat.write(nb, path)
    nbgrader(course, "generate_assignment", name, "--force")


def make_class(course: Path, n_valid: int, broken: dict) -> list[str]:
    """Write ``submitted/<student>/mnist_cnn/`` for every student; return their names."""
    import nbformat

    name = ASSIGNMENT.name
    students = []
    for k in range(n_valid):
        student = f"student{k:02d}"
        dst = course / "submitted" / student / name
        runnable_solution(ASSIGNMENT, dst)
        nb = nbformat.read(dst / ASSIGNMENT.notebook, as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "build_model")
        cell.source = f"keras.utils.set_random_seed({1000 + k})  # this student's own seed\n" + cell.source
        nbformat.write(nb, dst / ASSIGNMENT.notebook)
        students.append(student)
    for student, edit in broken.items():
        dst = course / "submitted" / student / name
        base = "release" if edit is None else "solutions"
        shutil.copytree(course_config.COURSE_DIR / base / name, dst)
        if edit is not None:
            nb = nbformat.read(dst / ASSIGNMENT.notebook, as_version=4)
            grade_id, old, new = edit
            cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
            cell.source = cell.source.replace(old, new)
            nbformat.write(nb, dst / ASSIGNMENT.notebook)
        students.append(student)
    return students


def our_layout(course: Path, students: list[str], target: Path) -> int:
    """The same students' notebooks with the model files their autograded runs saved; count the models."""
    name, models = ASSIGNMENT.name, 0
    for student in students:
        dst = target / student / name
        dst.mkdir(parents=True)
        shutil.copyfile(course / "submitted" / student / name / ASSIGNMENT.notebook, dst / ASSIGNMENT.notebook)
        saved = course / "autograded" / student / name / ASSIGNMENT.model_file
        if saved.is_file():
            shutil.copyfile(saved, dst / ASSIGNMENT.model_file)
            models += 1
    return models


def timed_command(argv: list[str]) -> tuple[float, list[float], str, str]:
    """Run a command; its wall time, when each progress line ("[k/n]") came (seconds from the start), its output."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout_parts: list[str] = []
    reader = threading.Thread(target=lambda: stdout_parts.append(proc.stdout.read()), daemon=True)
    reader.start()
    stamps, stderr = [], []
    for line in proc.stderr:
        stderr.append(line)
        if line.lstrip().startswith("["):
            stamps.append(time.monotonic() - start)
    proc.wait()
    reader.join()
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:6])} failed:\n{''.join(stderr)[-3000:]}")
    return seconds, stamps, "".join(stdout_parts), "".join(stderr)


def interpreter_start_s(runs: int = 10) -> float:
    """The mean wall time of ``python -I -c pass``: the interpreter's part of a sandboxed job's start."""
    start = time.monotonic()
    for _ in range(runs):
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
    return (time.monotonic() - start) / runs


def breakdown(graded: Path) -> tuple[dict[str, float], int]:
    """Mean seconds per step of one submission with a model, from the committed results under ``graded``,
    and how many submissions that is. Writing the results is timed here, on the same records."""
    from autograder.results import load_records
    from autograder.worker import write_student_files

    steps = {"start": "sandbox and interpreter start", "imports": "imports in the sandbox (NumPy, the engine)",
             "read_model": "reading the model (in the sandbox)", "forward": "the forward pass (10,000 digits)",
             "write": "writing the predictions", "end": "the job's exit and the sandbox's teardown"}
    sums = dict.fromkeys(list(steps.values()) + ["the trusted side: copy, architecture, checks, aggregates",
                                                 "writing the results (results.json, feedback pages, record)"], 0.0)
    results = [r for r in load_records(graded, ASSIGNMENT.name)
               if r.extra.get("models", {}).get("model", {}).get("prediction", {}).get("phases")]
    with tempfile.TemporaryDirectory(prefix="throughput-write-") as tmp:
        for r in results:
            job = r.extra["models"]["model"]["prediction"]
            for key, label in steps.items():
                sums[label] += job["phases"][key]
            sums["the trusted side: copy, architecture, checks, aggregates"] += max(
                0.0, r.seconds - sum(job["phases"].values()))
            start = time.monotonic()
            write_student_files(r, Path(tmp) / r.student)
            sums["writing the results (results.json, feedback pages, record)"] += time.monotonic() - start
    return {label: total / max(1, len(results)) for label, total in sums.items()}, len(results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=24, help="valid submissions (3 broken ones are added)")
    parser.add_argument("--workers", type=int, help="our grader's workers (default: its own default, the cores)")
    parser.add_argument("--out", type=Path, default=DOCS / "grading_throughput.md")
    parser.add_argument("--keep", type=Path, help="keep the scratch course here (default: a temporary folder)")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that it runs: one valid student trained 1 epoch, one broken, --cluster local:2 only; the "
                             "report stays in the scratch folder")
    args = parser.parse_args(argv)

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="throughput-"))
    if args.smoke:
        args.students, args.out = 1, scratch / "grading_throughput.md"
    course = scratch / "course"
    print(f"scratch folder: {scratch}", flush=True)
    parameters, broken = dict(ASSIGNMENT.parameters["quick"]), BROKEN
    if args.smoke:  # one epoch, and the broken submission that fails at once
        parameters["EPOCHS"], broken = 1, {"broken_typo": BROKEN["broken_typo"]}
    make_course(course, parameters)
    students = make_class(course, args.students, broken)
    n = len(students)
    print(f"{n} students ({args.students} valid, {len(broken)} broken); running nbgrader autograde ...", flush=True)

    start = time.monotonic()
    nbgrader(course, "autograde", ASSIGNMENT.name, "--force", "--create")
    nbgrader_s = time.monotonic() - start
    print(f"nbgrader autograde: {n} submissions in {nbgrader_s:.1f} s", flush=True)

    ours_in = scratch / "submitted"
    models = our_layout(course, students, ours_in)
    def ours(out: str, *extra: str) -> tuple[float, list[float], str, str]:
        """Our grader on the class, the whole command timed (a fresh output folder: everything is graded)."""
        return timed_command([sys.executable, "-m", "autograder", "grade", ASSIGNMENT.name, str(ours_in),
                              "--out", str(scratch / out), "--profile", "quick", *extra])

    ours_s, stamps, stdout, stderr = ours("graded", *(["--workers", str(args.workers)] if args.workers else []))
    workers_line = next((line for line in stderr.splitlines() if "worker(s)" in line), "")
    workers = int(re.search(r"(\d+) worker\(s\)", workers_line).group(1)) if "worker(s)" in workers_line else 1
    print(stdout)
    print(f"our grader: {n} submissions ({models} with a saved model) in {ours_s:.1f} s", flush=True)
    first, last = stamps[0], stamps[-1]
    steady = 60 * (len(stamps) - 1) / (last - first) if len(stamps) > 1 and last > first else float("nan")
    print(f"first result after {first:.1f} s, the last after {last:.1f} s, the command ended after {ours_s:.1f} s: "
          f"{steady:.1f} submissions/min between the first and the last result", flush=True)
    steps, measured = breakdown(scratch / "graded")
    per_submission = sum(steps.values())
    python_s = interpreter_start_s()
    print(f"\nwhere one submission's time goes (mean of the {measured} with a model, one worker's seconds):")
    for label, seconds in steps.items():
        print(f"  {seconds:6.3f} s  {100 * seconds / per_submission:4.1f} %  {label}")
    print(f"  {per_submission:6.3f} s  100 %   in all: {workers} worker(s) can grade {60 * workers / per_submission:.0f} "
          f"submissions/min at most (python -I -c pass alone: {python_s:.3f} s)", flush=True)
    # The same class on a local Dask cluster (--cluster local:N): what the cluster path costs where it is not needed
    # (the smoke run: local:2 only).
    cluster_s = {k: ours(f"graded-cluster-{k}", "--cluster", f"local:{k}")[0] for k in ((2,) if args.smoke else (1, 2))}

    ours_rate, nbgrader_rate = 60 * n / ours_s, 60 * n / nbgrader_s
    cluster_rate = {k: 60 * n / s for k, s in cluster_s.items()}
    cluster_s.setdefault(1, float("nan"))
    cluster_rate.setdefault(1, float("nan"))
    ratio = ours_rate / nbgrader_rate
    print(f"\nour grader      {ours_rate:7.1f} submissions/min")
    print(f"nbgrader        {nbgrader_rate:7.1f} submissions/min")
    print(f"ratio           {ratio:7.1f}x")
    print(f"cluster local:2: {cluster_rate[2]:.1f} submissions/min, {cluster_rate[2] / ours_rate:.2f} of the pool's rate "
          "(goal >= 0.9)")
    if not args.smoke:
        print(f"cluster local:1 -> local:2: {cluster_rate[1]:.1f} -> {cluster_rate[2]:.1f} submissions/min, "
              f"{cluster_rate[2] / cluster_rate[1]:.2f}x with the second worker")

    lines = [
        "# Grading throughput: saved models against `nbgrader autograde`",
        "",
        "Written by `bench/grading_throughput.py`: one class of `mnist_cnn` students, graded by",
        "`nbgrader autograde` (re-executes every notebook with the quick parameters, EPOCHS = 2) and by",
        "`autograder grade mnist_cnn --profile quick` on the same notebooks and the models those runs saved",
        "(saved-model mode, every model predicted in a sandbox of its own; the whole command timed,",
        "process start included).",
        "",
        f"Machine: {describe_machine()}",
        f"Date: {dt.date.today().isoformat()}",
        f"Class: {n} submissions ({args.students} valid with distinct seeds, {len(broken)} broken: "
        f"{', '.join(broken)}); {models} saved a model.",
        f"Our grader: {workers_line.strip()}",
        "",
        "| grader | wall s | submissions/min |",
        "|---|---|---|",
        f"| nbgrader autograde | {nbgrader_s:.1f} | {nbgrader_rate:.1f} |",
        f"| autograder grade (saved models) | {ours_s:.1f} | {ours_rate:.1f} |",
        f"| autograder grade --cluster local:1 | {cluster_s[1]:.1f} | {cluster_rate[1]:.1f} |",
        f"| autograder grade --cluster local:2 | {cluster_s[2]:.1f} | {cluster_rate[2]:.1f} |",
        "",
        f"Our grader's first result came after {first:.1f} s (the command's start, its workers' start, the test data "
        f"loaded in each), its last after {last:.1f} s: {steady:.1f} submissions/min in between.",
        "",
        f"Where one submission's time goes (mean of the {measured} submissions with a model, seconds of one worker; "
        "the prediction job's steps from the child's own clock, the trusted side from the result's time, writing "
        "the results timed by the benchmark on the same records):",
        "",
        "| step | seconds | share |",
        "|---|---|---|",
        *[f"| {label} | {seconds:.3f} | {100 * seconds / per_submission:.1f} % |" for label, seconds in steps.items()],
        f"| in all | {per_submission:.3f} | 100 % |",
        "",
        f"With {workers} worker(s), at most {60 * workers / per_submission:.0f} submissions/min; the whole command's "
        f"rate ({ours_rate:.1f}/min) also pays for its start. `python -I -c pass` alone takes {python_s:.3f} s here.",
        "",
        f"Ratio: {ratio:.1f}x. The Dask path (`--cluster local:2`, a local cluster of two worker processes started",
        f"by the command, each loading the test data itself) runs at {cluster_rate[2] / ours_rate:.2f} of the local "
        f"pool's rate (goal >= 0.9); from one Dask worker to two the rate grows {cluster_rate[2] / cluster_rate[1]:.2f}x.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    if args.keep is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
