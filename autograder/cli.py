"""The ``autograder`` command: release, grade, demo, and a look at the grading environment."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import course_config  # noqa: E402


def cmd_new(args) -> int:
    from autograder import scaffold

    path = scaffold.new(args.assignment, force=args.force)
    print(f"wrote {path}: fill in its prose and solution blocks, then run `autograder release {args.assignment}`")
    return 0


def cmd_release(args) -> int:
    from autograder import release

    if args.check:
        problems = []
        for name in args.assignments or list(course_config.ASSIGNMENTS):
            problems += release.drift(name)
        for p in problems:
            print(p)
        print("release/ and solutions/ are in sync with source/" if not problems else
              "out of sync: run `autograder release` and commit the result")
        return 1 if problems else 0
    for path in release.release(args.assignments or None):
        print(f"wrote {path}/")
    return 0


def cmd_grade(args) -> int:
    from autograder import batch
    from autograder.exporters.console import table
    from autograder.exporters.grades_csv import GRADES_FILE

    report = batch.grade(
        args.assignment,
        Path(args.submitted),
        Path(args.out),
        execute=args.execute,
        profile_name=args.profile,
        students=args.student or None,
        backend=args.sandbox,
        workers=args.workers,
        regrade=args.regrade,
        strict=True if args.strict else None,
        cluster=args.cluster,
        insecure=args.insecure,
        # With --audit (saved models graded here), the GPUs are for the audit's re-runs of notebooks.
        gpus_per_task=0 if args.audit is not None and not args.execute else args.gpus_per_task,
        pseudonyms=read_pseudonyms(args.pseudonyms),
    )
    if args.audit is not None:
        if args.execute:
            raise ValueError("--audit re-executes saved-model grades; it is not needed with --execute")
        from autograder.audit import audit

        audit(args.assignment, Path(args.submitted), Path(args.out), report.results, fraction=args.audit,
              seed=args.audit_seed, profile_name=args.audit_profile, backend=args.sandbox, workers=args.workers,
              cluster=args.cluster, insecure=args.insecure, gpus_per_task=args.gpus_per_task)
    print(table(report.results))
    if args.gradebook:
        counts = record_in_gradebook(report.results, args.gradebook, Path(args.submitted).resolve().parent,
                                     Path(args.out))
        print(f"\ngradebook {args.gradebook}: {counts}")
    print(f"\nresults: {Path(args.out) / '<student>' / args.assignment / 'results.json'} and feedback.html, "
          f"{Path(args.out) / GRADES_FILE}, {Path(args.out) / 'summary.md'}")
    if report.internal_errors:
        print(f"autograder: {len(report.internal_errors)} internal grader error(s) ({', '.join(report.internal_errors[:10])}); "
              "run the same command again to grade them again", file=sys.stderr)
        return 3
    return 0


def read_pseudonyms(path: str | None) -> dict[str, str] | None:
    """The course's pseudonyms for the leaderboard (a CSV of student,pseudonym), or None: derived ones."""
    if not path:
        return None
    from autograder.exporters.leaderboard import read_chosen

    return read_chosen(Path(path))


def cmd_class(args) -> int:
    from autograder import classwide
    from autograder.datasets.tasks import load_task
    from autograder.results import load_records

    assignment = course_config.assignment(args.assignment)
    out = Path(args.out)
    records = load_records(out, assignment.name)
    if not records:
        raise FileNotFoundError(f"{out} holds no graded {assignment.name} results (run autograder grade --out {out})")
    profiles = sorted({r.extra.get("profile") for r in records if r.extra.get("profile")})
    profile = course_config.profile(args.profile or (profiles[0] if len(profiles) == 1 else course_config.DEFAULT_PROFILE))
    task = load_task(assignment, profile)
    try:
        found = classwide.report(assignment, profile, out, task, chosen=read_pseudonyms(args.pseudonyms))
    finally:
        task.close()
    print(f"{assignment.name}: {found['pairs']:,} pair(s) of models of {found['students']} student(s) compared, "
          f"{len(found['flagged'])} flagged pair(s): {out / 'similarity.md'}, {out / 'similarity.html'}; "
          f"leaderboard: {out / 'leaderboard.html'}")
    return 0


def record_in_gradebook(results, db, course: Path | None, graded: Path) -> dict:
    """The results in nbgrader's gradebook and, where ``course`` is an nbgrader course folder (it holds
    ``submitted/``), in its ``autograded/`` and ``feedback/`` (its nbgrader_config.py's course_id honoured)."""
    from autograder.exporters.gradebook import write_gradebook
    from autograder.exporters.nbgrader_course import course_settings

    nbgrader_course = course if course is not None and (course / "submitted").is_dir() else None
    settings = course_settings(nbgrader_course) if nbgrader_course else {}
    return write_gradebook(results, db or settings.get("db_url"), course_id=settings.get("course_id", ""),
                           nbgrader_course=nbgrader_course, graded_dir=graded)


def cmd_gradebook(args) -> int:
    from autograder.exporters.nbgrader_course import course_settings
    from autograder.results import load_records

    results = load_records(Path(args.out), args.assignment)
    if not results:
        raise FileNotFoundError(f"no graded results of {args.assignment} under {args.out}; run `autograder grade` first")
    course = Path(args.course).resolve() if args.course else None
    db = args.db or (course_settings(course).get("db_url") if course else None) or (
        f"sqlite:///{course / 'gradebook.db'}" if course else None)
    if not db:
        raise ValueError("give --db (the course's gradebook) or --course (the nbgrader course folder)")
    counts = record_in_gradebook(results, db, course, Path(args.out))
    print(f"gradebook {db}: {counts}")
    return 0


def cmd_check(args) -> int:
    from autograder.course_check import check_saved_models, facts_of, has_problem

    assignment = course_config.assignment(args.assignment)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder (give the folder that holds the saved model files)")
    x_val, y_val = validation_data(assignment)
    models = {}
    if args.with_keras:
        import keras

        for spec in assignment.models:
            if spec.kind == "keras" and (folder / spec.file).is_file():
                try:
                    models[spec.name] = keras.saving.load_model(folder / spec.file, safe_mode=True, compile=False)
                except Exception as exc:
                    print(f"note: Keras {keras.__version__} cannot load {spec.file} ({type(exc).__name__}), so its "
                          "predictions are not compared")
    from autograder.course_check import validation_data as course_validation

    reports = check_saved_models(facts_of(assignment, args.profile), models=models, x_val=x_val, y_val=y_val,
                                 folder=folder, why_no_data=getattr(course_validation, "why", None))
    return 1 if any(has_problem(r) for r in reports.values()) else 0


def validation_data(assignment: course_config.Assignment):
    """The validation split a notebook of ``assignment`` uses (images scaled to [0, 1]), or (None, None)."""
    from autograder import course_check

    return course_check.validation_data(course_check.facts_of(assignment, course_config.DEFAULT_PROFILE))


def cmd_demo(args) -> int:
    from autograder import demo

    return demo.main(Path(args.out), assignments=args.assignment or None, workers=args.workers)


def cmd_doctor(args) -> int:
    from autograder import sandbox
    from autograder.course_data import DataError, load_mnist, mnist_candidates
    from autograder.worker import default_workers

    print(f"course folder: {course_config.COURSE_DIR}")
    print(f"grading workers by default: {default_workers()} (the cores this process may use)")
    backend = sandbox.default_backend()
    print(f"sandbox backends that work here: {', '.join(sandbox.available_backends())} (using {backend})")
    limits = course_config.LIMITS
    print(f"sandbox limits (course_config.LIMITS; notebook time and memory per profile): disk {limits.disk_limit_mb} MB, "
          f"/tmp {limits.tmp_limit_mb} MB, {limits.max_processes} processes and threads, files up to "
          f"{limits.max_file_write_mb} MB; strict mode {'required' if limits.require_kernel_limits else 'off'}")
    for e in sandbox.enforcement(backend):
        print(f"  {'kernel ' if e.kernel else 'WEAK   '} {e.resource}: {e.how}")
    gpu = sandbox.gpu_check(backend)
    if gpu["problem"]:
        print(f"GPUs for re-execution (--gpus-per-task): none usable: {gpu['problem']}")
    else:
        print(f"GPUs for re-execution (--gpus-per-task): {len(gpu['devices'])} device node(s) usable in the sandbox"
              + (f", CUDA sees {gpu['cuda_devices']} GPU(s)" if "cuda" in gpu else ""))
    for where, path in mnist_candidates():
        print(f"MNIST candidate {where}: {path} ({'present' if path.exists() else 'absent'})")
    try:
        load_mnist(download=False)
        print("MNIST: found and valid")
    except DataError as exc:
        print(f"MNIST: {exc}")
    data_report()
    return 0


def data_report() -> None:
    """Print, for every profile, whether the hidden test data each dataset needs is there and right."""
    from autograder.course_data import DataError, susy_candidates
    from autograder.datasets.tasks import task_class

    for where, path in susy_candidates():
        print(f"SUSY candidate {where}: {path} ({'present' if path.exists() else 'absent'})")
    datasets = {a.dataset: task_class(a) for a in course_config.ASSIGNMENTS.values()}
    for name in sorted(course_config.PROFILES):
        profile = course_config.profile(name)
        for dataset, cls in sorted(datasets.items()):
            try:
                task = cls(profile)
                n, fp = len(task.labels), task.fingerprint()
                task.close()
                print(f"test data, profile {name}, {dataset}: ok, {n:,} test items ({cls.source_text(profile)}; "
                      f"fingerprint {fp})")
            except (DataError, OSError, ValueError) as exc:
                print(f"test data, profile {name}, {dataset}: NOT USABLE: {str(exc).splitlines()[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="autograder", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="build release/ and solutions/ from source/ with nbgrader")
    p.add_argument("assignments", nargs="*", help="assignments to build (default: all)")
    p.add_argument("--check", action="store_true", help="only report whether release/ and solutions/ are in sync")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("new", help="write a new assignment's source notebook (describe it in course_config.py first)")
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("--force", action="store_true", help="overwrite the source notebook if it exists")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("grade", help="grade submitted/<student>/<assignment>/ for every student")
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("submitted", help="nbgrader's submitted/ folder")
    p.add_argument("--out", required=True, help="where to write results (per student results.json, grades.csv)")
    p.add_argument("--execute", action="store_true", help="re-run each notebook (sandboxed) before grading its model")
    p.add_argument("--profile", default=course_config.DEFAULT_PROFILE, choices=sorted(course_config.PROFILES),
                   help="thresholds and re-execution parameters (default: %(default)s)")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--sandbox", choices=["bwrap", "unshare", "none"], help="isolation backend (default: best available)")
    p.add_argument("--workers", type=int, help="submissions graded at once, each in its own process (default: the number of cores)")
    p.add_argument("--regrade", action="store_true", help="grade every submission again, even if unchanged since its last result")
    p.add_argument("--gradebook", metavar="DB", help="also record every check's score in this nbgrader gradebook (path or sqlite URL)")
    p.add_argument("--audit", type=float, metavar="FRACTION",
                   help="re-run the notebooks of a seeded random FRACTION of the students (and of every flagged one) "
                        "and flag saved models that score more than the measured gap above their own notebook")
    p.add_argument("--audit-seed", type=int, default=0, help="seed of the audit's random sample (default: %(default)s)")
    p.add_argument("--audit-profile", default="quick", choices=sorted(course_config.PROFILES),
                   help="profile the audited notebooks are re-run under (default: %(default)s, sized for a CPU)")
    p.add_argument("--strict", action="store_true",
                   help="refuse to grade unless the kernel enforces every sandbox limit (see `autograder doctor`)")
    p.add_argument("--cluster", metavar="CREDENTIALS",
                   help="grade on a Dask cluster: the credentials file serve(cluster, ...) wrote (TLS), a scheduler's "
                        "tls:// address (Dask's TLS settings), or local:N, a local Dask cluster of N worker processes "
                        "(README: On a cluster)")
    p.add_argument("--insecure", action="store_true",
                   help="with --cluster: allow an unencrypted tcp:// scheduler (anyone who reaches it can run code on "
                        "the workers that hold the test labels)")
    p.add_argument("--gpus-per-task", type=int, default=0, metavar="N",
                   help="with --cluster: each re-run of a notebook (--execute, or --audit's) asks for N of its worker's GPU "
                        "resources and is given the worker's GPUs in the sandbox (start the GPU nodes' workers with "
                        "--resources GPU=<their GPUs>)")
    p.add_argument("--pseudonyms", metavar="CSV",
                   help="the names the leaderboard shows (rows of student,pseudonym; default: derived from each "
                        "student's id with a key kept in the output folder)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("class", help="the class as a whole from committed results: similar models (similarity.md, "
                                     ".html) and the leaderboard (leaderboard.html)")
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("--out", required=True, help="the folder `autograder grade --out` wrote")
    p.add_argument("--profile", choices=sorted(course_config.PROFILES),
                   help="the profile the results were graded under (default: the one their records name)")
    p.add_argument("--pseudonyms", metavar="CSV", help="the names the leaderboard shows (rows of student,pseudonym)")
    p.set_defaults(func=cmd_class)

    p = sub.add_parser("gradebook", help="record graded results in an nbgrader gradebook (gradebook.db)")
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("--out", required=True, help="the folder `autograder grade --out` wrote")
    p.add_argument("--db", help="the course's gradebook (path to gradebook.db or an sqlite URL; default: the "
                                "course's own, from its nbgrader_config.py or COURSE/gradebook.db)")
    p.add_argument("--course", help="nbgrader's course folder (it holds submitted/): also write autograded/ and "
                                    "feedback/ there, so formgrader and nbgrader release_feedback work on these grades")
    p.set_defaults(func=cmd_gradebook)

    p = sub.add_parser("demo", help="release, grade a sample class with --execute --profile quick, print the table")
    p.add_argument("--out", default="demo-output", help="scratch folder for the sample class (default: %(default)s)")
    p.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    p.add_argument("--workers", type=int, help="notebooks run at once (default: the number of cores)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("check", help="check saved model files as the grader reads them (the notebooks' last check)")
    p.add_argument("assignment", choices=sorted(course_config.ASSIGNMENTS))
    p.add_argument("folder", help="a folder with the saved model files (a submission, or a student's own)")
    p.add_argument("--profile", default=course_config.DEFAULT_PROFILE, choices=sorted(course_config.PROFILES),
                   help="whose thresholds to show (default: %(default)s)")
    p.add_argument("--with-keras", action="store_true",
                   help="also load each .keras file with Keras (safe mode) and compare its predictions with the "
                        "grader's engine; only for files you trust: this runs outside the grader's sandbox")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="show the sandbox backend and where course data is found")
    p.set_defaults(func=cmd_doctor)

    from autograder.gradescope import bundle as gradescope_bundle

    gradescope_bundle.add_parser(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"autograder: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
