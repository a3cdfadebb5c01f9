"""Record every check's score in nbgrader's gradebook (``gradebook.db``), through nbgrader's own API.

Each check of an assignment is an nbgrader graded cell ``check_<id>`` of the source notebook (written
from course_config by ``autograder release``). :func:`write_gradebook` first lets nbgrader itself
record the assignment, its notebook and those cells in the target database: it runs ``nbgrader
generate_assignment`` on a scratch copy of ``source/<assignment>/`` pointed at that database, so the
cells, their sources and checksums are exactly what nbgrader would record (``nbgrader autograde`` and
formgrader then work on that database as usual). Then, with :class:`nbgrader.api.Gradebook`, it
creates missing students and submissions and sets each ``check_<id>`` grade's ``auto_score`` to our
score. A TA's manual score is never touched (nbgrader shows it instead of the auto score); a check
flagged for a human look is marked ``needs_manual_grade`` until a TA has scored it.

Writing the same results twice leaves the same database. Other assignments, students and grades in
an existing course database are left alone.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

import course_config

# Scores closer than this are the same score (points are quarters or halves in practice).
TOLERANCE = 1e-6


def db_url_of(db: str | Path) -> str:
    """An SQLAlchemy URL: ``db`` itself if it is one, else ``sqlite:///<absolute path>``."""
    text = str(db)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def notebook_id(assignment: course_config.Assignment) -> str:
    """nbgrader's name for the assignment's notebook: its file name without ``.ipynb``."""
    return Path(assignment.notebook).stem


def ensure_assignment(assignment: course_config.Assignment, db_url: str, *,
                      course_dir: Path = course_config.COURSE_DIR, course_id: str = "") -> None:
    """Have nbgrader record ``assignment`` (notebook, graded cells, source cells) in ``db_url``.

    Runs ``nbgrader generate_assignment`` in a scratch course folder whose source is a copy of
    ``course_dir/source/<assignment>/`` with its grading section synced to course_config; nothing is
    written into ``course_dir``. nbgrader refuses (and this raises) when the database already holds
    submissions of the assignment whose graded cells differ from course_config's checks.
    """
    from autograder import release
    from autograder.notebook import run_nbgrader

    source = Path(course_dir) / "source" / assignment.name
    if not (source / assignment.notebook).is_file():
        raise FileNotFoundError(f"{source / assignment.notebook} does not exist")
    extra = [f"--CourseDirectory.db_url={db_url}"]
    if course_id:
        extra.append(f"--CourseDirectory.course_id={course_id}")
    with tempfile.TemporaryDirectory(prefix="autograder-gradebook-") as tmp:
        root = Path(tmp)
        shutil.copytree(source, root / "source" / assignment.name,
                        ignore=shutil.ignore_patterns(*release.IGNORED))
        release.sync_grading_cells(assignment, root)
        shutil.copyfile(release.NBGRADER_CONFIG_FILE, root / "nbgrader_config.py")
        run_nbgrader("generate_assignment", assignment.name, root, *extra, error=release.ReleaseError)


def _flagged(result) -> set[str]:
    return {f.get("check") for f in (getattr(result, "flags", None) or []) if isinstance(f, dict)}


def _validate(results) -> dict[str, course_config.Assignment]:
    """The assignments of ``results``; a ValueError if a result does not fit course_config."""
    assignments = {}
    problems = []
    for r in results:
        a = assignments.setdefault(r.assignment, course_config.assignment(r.assignment))
        points = {c.id: c.points for c in a.checks}
        for check in r.checks:
            if check.id not in points:
                problems.append(f"{r.student}/{r.assignment}: check {check.id!r} is not in course_config")
            elif abs(float(check.points) - float(points[check.id])) > TOLERANCE:
                problems.append(f"{r.student}/{r.assignment}: check {check.id!r} was graded out of {check.points} "
                                f"points, course_config now says {points[check.id]} (grade it again)")
            elif not 0 <= float(check.score) <= float(check.points) + TOLERANCE:
                problems.append(f"{r.student}/{r.assignment}: check {check.id!r} scored {check.score} "
                                f"out of {check.points}")
    seen = set()
    for r in results:
        if (r.student, r.assignment) in seen:
            problems.append(f"{r.student}/{r.assignment}: more than one result")
        seen.add((r.student, r.assignment))
    if problems:
        raise ValueError("cannot write these results to the gradebook:\n" + "\n".join(problems))
    return assignments


def write_gradebook(results, db_url: str, *, course_dir: Path = course_config.COURSE_DIR,
                    course_id: str = "", nbgrader_course: Path | None = None, graded_dir: Path | None = None) -> dict:
    """Record ``results`` (StudentResult-like objects) in the nbgrader gradebook at ``db_url``.

    ``db_url`` is an SQLAlchemy URL or a path (``gradebook.db`` means ``sqlite:///<its absolute
    path>``). ``course_id`` is nbgrader's ``CourseDirectory.course_id`` (default: nbgrader's own, "").
    With ``nbgrader_course`` (the folder that holds ``submitted/``) and ``graded_dir`` (where
    ``autograder grade`` wrote the results), also write nbgrader's ``autograded/`` and ``feedback/``
    there, with submission timestamps in the gradebook, so that formgrader lists every submission and
    ``nbgrader release_feedback`` delivers our feedback pages (:mod:`.nbgrader_course`).
    Returns counts: ``students`` (in ``results``), ``new_students``, ``new_submissions`` and
    ``grades`` (check grades written), and with ``nbgrader_course`` ``autograded`` and ``feedback``.
    """
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    from autograder.exporters.nbgrader_course import sync_timestamps, write_course_folders
    from autograder.notebook import check_cell_id

    results = list(results)
    assignments = _validate(results)
    counts = {"students": len({r.student for r in results}), "new_students": 0, "new_submissions": 0, "grades": 0}
    if not results:
        return counts
    url = db_url_of(db_url)
    for a in assignments.values():
        ensure_assignment(a, url, course_dir=course_dir, course_id=course_id)

    scores: dict[tuple[str, str], dict[str, float]] = {}  # the gradebook's score of each check, for the pages
    with Gradebook(url, course_id) as gb:
        for r in sorted(results, key=lambda r: (r.assignment, r.student)):
            a = assignments[r.assignment]
            try:
                gb.find_student(r.student)
            except MissingEntry:
                gb.add_student(r.student)
                counts["new_students"] += 1
            try:
                gb.find_submission(a.name, r.student)
            except MissingEntry:
                with warnings.catch_warnings():  # nbgrader's own add_submission trips SQLAlchemy's autoflush
                    warnings.simplefilter("ignore", SAWarning)
                    gb.add_submission(a.name, r.student)
                counts["new_submissions"] += 1
            flagged = _flagged(r)
            for check in r.checks:
                grade = gb.find_grade(check_cell_id(check.id), notebook_id(a), a.name, r.student)
                grade.auto_score = float(check.score)
                # A flagged check waits for a TA; once a TA has scored it, the flag is settled.
                grade.needs_manual_grade = check.id in flagged and grade.manual_score is None
                scores.setdefault((r.student, r.assignment), {})[check.id] = grade.score  # a TA's, where set
                counts["grades"] += 1
        if nbgrader_course is not None:
            sync_timestamps(gb, results, nbgrader_course)
        gb.db.commit()
    if nbgrader_course is not None:
        counts.update(write_course_folders(results, nbgrader_course, graded_dir, scores))
    return counts
