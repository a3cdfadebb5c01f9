"""nbgrader's course folders after grading: ``autograded/`` and ``feedback/`` beside ``submitted/``.

``nbgrader autograde`` leaves ``autograded/<student>/<assignment>/`` (the submission's files, the
notebook with its graded cells run, ``timestamp.txt``) and a gradebook submission with the same
timestamp; formgrader lists a submission, and ``nbgrader generate_feedback`` / ``release_feedback``
work on it, only then. :func:`write_course_folders` leaves the same for our results: the submitted
notebook (the released one where none was handed in) whose ``check_<id>`` cells show our score and
message, the submission's other files, and in ``feedback/<student>/<assignment>/<notebook>.html`` our
feedback page, which ``nbgrader release_feedback`` delivers through the exchange as it is (``nbgrader generate_feedback``
writes the same page: the autograded notebook carries the grading record, see
:mod:`autograder.nbgrader_plugins`).
The gradebook's submission timestamps are set to the submitted ones (:func:`sync_timestamps`).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import course_config
from autograder.results import atomic_write

# Files of a submission that nbgrader's exchange writes and reads back: kept as they are.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")


def course_settings(course_dir: Path) -> dict:
    """``db_url`` and ``course_id`` of an nbgrader course folder, from its ``nbgrader_config.py`` where set."""
    path = Path(course_dir) / "nbgrader_config.py"
    if not path.is_file():
        return {}
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(path.name, str(path.parent)).load_config()
    course = config.get("CourseDirectory", {})
    return {key: course[key] for key in ("db_url", "course_id") if key in course and course[key]}


def submitted_timestamp(folder: Path):
    """The submission's time as nbgrader reads it (``timestamp.txt``), or None."""
    from nbgrader.utils import parse_utc

    path = Path(folder) / "timestamp.txt"
    return parse_utc(path.read_text().strip()) if path.is_file() else None


def autograded_notebook(result, assignment: course_config.Assignment, submitted: Path):
    """The notebook formgrader shows: the student's (else the released one), graded cells with our outputs,
    and the grading record that ``nbgrader generate_feedback`` renders as our page (:mod:`autograder.notebook`)."""
    import nbformat

    from autograder.notebook import annotate

    release = nbformat.read(course_config.COURSE_DIR / "release" / assignment.name / assignment.notebook, as_version=4)
    nb = None
    path = submitted / assignment.notebook
    if path.is_file() and not path.is_symlink():
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # not a notebook: formgrader shows the released one, with our outputs
            nb = None
    return annotate(copy.deepcopy(release) if nb is None else nb, result, release)


def with_scores(record: dict, scores: dict[str, float]) -> dict:
    """``record`` with each check's score as the gradebook has it (``scores``: check id -> score): where a TA
    set a score by hand it replaces the kit's, and the page says so. The feedback page never disagrees
    with the gradebook."""
    record = {**record, "checks": [dict(c) for c in record.get("checks", [])]}
    for check in record["checks"]:
        score = scores.get(check.get("id"))
        if score is not None and abs(float(score) - float(check.get("score", 0))) > 1e-9:
            check["output"] = (f"Your TA set this check's score to {float(score):g} of {float(check.get('points', 0)):g} "
                               f"points. The autograder said: {check.get('output', '')}")
            check["score"] = float(score)
    record["score"] = sum(float(c.get("score", 0)) for c in record["checks"])
    return record


def write_course_folders(results, course_dir: Path, graded_dir: Path, scores: dict | None = None) -> dict:
    """Write ``autograded/`` and ``feedback/`` in nbgrader's course folder ``course_dir`` (the folder that
    holds ``submitted/``) for ``results``, whose files ``autograder grade`` wrote under ``graded_dir``.
    ``scores``: {(student, assignment): {check id: the gradebook's score}}, for the feedback pages."""
    import nbformat

    course_dir, graded_dir = Path(course_dir), Path(graded_dir)
    counts = {"autograded": 0, "feedback": 0}
    for r in results:
        a = course_config.assignment(r.assignment)
        submitted = course_dir / "submitted" / r.student / a.name
        if not submitted.is_dir():
            continue
        autograded = course_dir / "autograded" / r.student / a.name
        feedback = course_dir / "feedback" / r.student / a.name
        for folder in (autograded, feedback):
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
        for path in sorted(submitted.rglob("*")):  # the submission's other files, as nbgrader copies them
            rel = path.relative_to(submitted)
            if path.is_symlink() or not path.is_file() or path.suffix == ".ipynb" or \
                    any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
                continue
            (autograded / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, autograded / rel)
        atomic_write(autograded / a.notebook, nbformat.writes(autograded_notebook(r, a, submitted)))
        counts["autograded"] += 1
        page = graded_dir / r.student / a.name / "feedback.html"
        if page.is_file():
            from autograder.exporters import feedback_html

            record = with_scores(r.to_dict(), (scores or {}).get((r.student, a.name), {}))
            atomic_write(feedback / f"{Path(a.notebook).stem}.html", feedback_html.render(record))
            for name in EXCHANGE_FILES:
                if (submitted / name).is_file():
                    shutil.copyfile(submitted / name, feedback / name)
            counts["feedback"] += 1
    return counts


def sync_timestamps(gb, results, course_dir: Path) -> None:
    """Give each gradebook submission the time of its ``submitted/`` folder, as ``nbgrader autograde``
    does: formgrader lists an autograded submission only when the two agree."""
    for r in results:
        submission = gb.find_submission(r.assignment, r.student)
        submission.timestamp = submitted_timestamp(Path(course_dir) / "submitted" / r.student / r.assignment)
