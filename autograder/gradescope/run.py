"""Gradescope's entry point: grade ``ROOT/submission`` into ``ROOT/results/results.json``.

``run_autograder`` (from the bundle ``autograder gradescope`` builds) runs
``python -m autograder.gradescope.run --root /autograder`` once per submission, as root. This module

1. writes a provisional results.json (a visible zero saying the autograder did not finish), so a
   grader killed for time or memory still leaves a valid file;
2. reads ``ROOT/source/bundle.json`` (assignment, profile, execute) and checks that the kit it runs
   is the bundle's;
3. makes the hidden test data root-only again (``ROOT/source/data``: a 0700 folder of 0600 files,
   owned by root; ``ROOT/source`` itself 0700), before any student code runs;
4. picks the sandbox backend, failing closed: backend "none" (no namespace works, as on a Docker
   host that forbids them) is accepted only when this process is root, the test data is root-only,
   and uid 65534 can run this Python; the child then runs as uid 65534. Otherwise no student code
   runs and results.json says why;
5. grades the submission (or its one subfolder, if everything is in one) with
   :func:`autograder.grading.submission.grade_submission`, the path the batch uses, on the bundle's data
   (``COURSE_DATA_DIR`` is set for this process only; the sandbox builds its child's environment
   from scratch);
6. writes results.json atomically, then the feedback pages next to it when the kit has them.

Any error on the way becomes a visible "autograder failed" test with score 0 and the error.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import time
import traceback
from pathlib import Path

RESULTS_FILE = "results.json"
BUNDLE_FILE = "bundle.json"
METADATA_FILE = "submission_metadata.json"
_IGNORED_ENTRIES = ("__MACOSX", ".DS_Store", "Thumbs.db")
_MAX_NESTING = 3
_VERIFY_SHA256_BELOW = 256 * 2**20  # bytes: larger data files are checked by size only


class Refused(Exception):
    """Student code will not run here: it would not be isolated from the test labels."""


# ------------------------------------------------------------------------------------------------
# results.json, whatever happens
# ------------------------------------------------------------------------------------------------
def failure(message: str) -> dict:
    """A results.json for when grading did not happen: a visible zero that says ``message``."""
    try:
        from autograder.exporters.gradescope import failure_json

        return failure_json(message)
    except Exception:  # the kit itself is broken: the same shape, by hand
        return {"score": 0.0, "output": message, "visibility": "visible", "stdout_visibility": "hidden",
                "tests": [{"name": "autograder failed", "score": 0.0, "max_score": 0.0, "status": "failed",
                           "output": message, "visibility": "visible"}]}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` atomically (readers see the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------------
# The bundle, the data, the sandbox
# ------------------------------------------------------------------------------------------------
def read_bundle(source: Path) -> dict:
    """``source/bundle.json``, checked against the course configuration."""
    import course_config

    path = source / BUNDLE_FILE
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RuntimeError(f"{path} is missing: the autograder zip was not built by `autograder gradescope`") from None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(bundle, dict):
        raise RuntimeError(f"{path} is not a JSON object")
    course_config.assignment(str(bundle.get("assignment")))  # ValueError naming the known ones
    course_config.profile(str(bundle.get("profile")))
    if not isinstance(bundle.get("execute"), bool):
        raise RuntimeError(f"{path}: 'execute' must be true or false")
    return bundle


def check_kit(source: Path, bundle: dict) -> str:
    """The running kit's version; RuntimeError unless it is the bundle's own (``source/kit``)."""
    import course_config
    from autograder.worker import kit_version

    kit = (source / "kit").resolve()
    if Path(course_config.COURSE_DIR).resolve() != kit:
        raise RuntimeError(f"the grader runs the kit at {course_config.COURSE_DIR}, not the bundle's ({kit})")
    version = kit_version()
    if bundle.get("kit_version") and bundle["kit_version"] != version:
        raise RuntimeError(f"the kit's code ({version}) is not what the bundle was built with ({bundle['kit_version']})")
    return version


def protect_data(source: Path) -> None:
    """As root: the test data root-only (0700 folders, 0600 files, owned by root), the source folder 0700."""
    data = source / "data"
    if os.geteuid() != 0:
        return
    data.mkdir(exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(data):
        os.chown(dirpath, 0, 0)
        os.chmod(dirpath, 0o700)
        for name in filenames:
            path = os.path.join(dirpath, name)
            os.lchown(path, 0, 0)
            if not os.path.islink(path):
                os.chmod(path, 0o600)
    os.chown(source, 0, 0)
    os.chmod(source, 0o700)


def data_exposed(source: Path) -> list[str]:
    """Paths of the test data that a user other than root could read or enter (empty: none)."""
    exposed = []
    for dirpath, dirnames, filenames in os.walk(source / "data"):
        for path in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
            st = os.lstat(path)
            if st.st_uid != 0 or (stat.S_IMODE(st.st_mode) & 0o077 and not stat.S_ISLNK(st.st_mode)):
                exposed.append(path)
    return exposed


def check_data(source: Path, bundle: dict) -> Path:
    """The bundle's data folder, with every file bundle.json lists present and intact."""
    import hashlib

    data = source / "data"
    for entry in bundle.get("data", []):
        path = data / str(entry.get("file"))
        if not path.is_file():
            raise RuntimeError(f"test data {path} is missing from the autograder bundle")
        size = path.stat().st_size
        if "bytes" in entry and size != entry["bytes"]:
            raise RuntimeError(f"test data {path} has {size} bytes, not {entry['bytes']}: rebuild the bundle")
        if entry.get("sha256") and size < _VERIFY_SHA256_BELOW:
            if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                raise RuntimeError(f"test data {path} is not the file the bundle was built with (SHA-256)")
    return data


def choose_backend(source: Path) -> str:
    """The sandbox backend, or Refused where student code could reach the test labels."""
    from autograder import sandbox

    backend = sandbox.default_backend()
    if backend != "none":
        return backend
    # No namespace isolates the child: only uid 65534 and file permissions stand between it and the
    # labels. That holds only if we are root (to switch user) and the labels are root-only.
    if os.geteuid() != 0:
        raise Refused(
            "no isolating sandbox works on this machine (bubblewrap and unshare both fail) and the autograder "
            "does not run as root, so it cannot run the submission as an unprivileged user; it refuses to run "
            "student code where it could read the test labels. Course staff: run run_autograder as root (as "
            "Gradescope does), or allow user namespaces."
        )
    exposed = data_exposed(source)
    if exposed:
        raise Refused(f"the test data is readable by other users ({', '.join(exposed[:3])}) and no isolating "
                      "sandbox works here; refusing to run student code")
    blocked = sandbox.unreachable_for_nobody(sys.executable)
    if blocked:
        raise Refused(
            f"no isolating sandbox works here and the unprivileged user (uid {sandbox.NOBODY}) that would run the "
            f"submission cannot reach the grader's Python ({sys.executable}: {blocked}); the image was not set "
            "up by setup.sh (it installs the venv world-readable under /opt)"
        )
    return backend


# ------------------------------------------------------------------------------------------------
# The submission
# ------------------------------------------------------------------------------------------------
def student_id(root: Path) -> str:
    """The first user's email or name from Gradescope's submission_metadata.json, else "submission"."""
    try:
        meta = json.loads((root / METADATA_FILE).read_text(encoding="utf-8"))
        user = (meta.get("users") or [])[0]
        for key in ("email", "name"):
            value = user.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:200]
    except (OSError, ValueError, AttributeError, IndexError, TypeError):
        pass
    return "submission"


def submission_folder(submission: Path) -> Path:
    """``submission``, or the folder inside it that holds everything (an uploaded folder or zip)."""
    if not submission.is_dir():
        raise RuntimeError(f"{submission} does not exist: Gradescope did not provide the submission")
    folder = submission
    for _ in range(_MAX_NESTING):
        entries = [p for p in folder.iterdir() if p.name not in _IGNORED_ENTRIES and not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
            folder = entries[0]
        else:
            break
    return folder


# ------------------------------------------------------------------------------------------------
# Grading
# ------------------------------------------------------------------------------------------------
def grade(root: Path):
    """Grade ``root/submission`` as ``root/source/bundle.json`` says; a StudentResult, or Refused."""
    import course_config
    from autograder.course_data import DATA_DIR_ENV

    source = root / "source"
    bundle = read_bundle(source)
    version = check_kit(source, bundle)
    protect_data(source)  # before any student code runs
    backend = choose_backend(source)
    from autograder import sandbox

    try:  # warnings go to Gradescope's debugging output, for course staff
        weak = sandbox.preflight(backend, course_config.LIMITS.require_kernel_limits,
                                 lambda line: print(line, file=sys.stderr))
    except sandbox.StrictRefused as exc:
        raise Refused(str(exc)) from None
    data = check_data(source, bundle)
    # The grader's own process reads the bundle's data (the sandbox's child gets its own environment,
    # with /data holding no labels); caches Keras keeps while reading go to the root-only folder too.
    os.environ[DATA_DIR_ENV] = str(data)
    os.environ["KERAS_HOME"] = str(data / ".keras")

    from autograder.datasets.tasks import load_task
    from autograder.grading.submission import grade_submission

    assignment = course_config.assignment(bundle["assignment"])
    profile = course_config.profile(bundle["profile"])
    src = submission_folder(root / "submission")
    task = load_task(assignment, profile)
    try:
        result = grade_submission(student_id(root), src, assignment, task, profile=profile,
                                  execute=bundle["execute"], backend=backend)
    finally:
        task.close()
    result.extra["kit_version"] = version
    if weak:
        result.extra["weak_limits"] = weak
    return result


def write_results(result, results_dir: Path) -> None:
    """results.json (atomically), then the feedback pages next to it (one that fails to render costs nobody
    their score)."""
    from autograder.exporters import student_folder

    student_folder.write(result, results_dir, record=False, pages_may_fail=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"),
                        help="Gradescope's folder: source/, submission/, results/ (default: %(default)s)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = Path(args.root).absolute()
    results_dir = root / "results"
    results = results_dir / RESULTS_FILE
    start = time.monotonic()
    write_json(results, failure("The autograder did not finish (it was stopped, or it crashed). Tell your instructor."))
    if os.geteuid() == 0:  # the results folder is root's: nothing the submission runs may replace results.json
        os.chown(results_dir, 0, 0)
        os.chmod(results_dir, 0o755)
    try:
        result = grade(root)
    except Refused as exc:
        print(f"autograder: refused: {exc}", file=sys.stderr)
        write_json(results, failure(f"The autograder refused to run this submission: {exc}"))
        return 0
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        write_json(results, failure(
            f"The autograder failed ({type(exc).__name__}: {exc}). Your submission was not graded; tell your instructor."))
        return 0
    try:
        write_results(result, results_dir)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        write_json(results, failure(f"The autograder failed writing the result ({type(exc).__name__}: {exc})."))
        return 0
    print(f"graded {result.student}: {result.score:g} / {result.max_score:g} "
          f"(sandbox {result.extra.get('sandbox')}, {time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
