"""nbgrader's own commands, as formgrader's and JupyterLab's buttons run them, in a course configured by the kit.

Each test drives the real nbgrader CLI (0.9) from a shell where the venv is not activated (its scripts
are not on PATH), in a course folder made of what a fresh clone tracks: ``source/`` and the course's
``nbgrader_config.py``. Generate gives the committed release; Validate checks the saved files without
training or touching them; Autograde (with and without ``--force``, and after a late resubmission) records
exactly the kit's scores; generate_feedback writes the kit's page; export has a column per check.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import notebook
from autograder.results import load_records

pytestmark = pytest.mark.slow
A = course_config.MNIST_DENSE
NB = Path(A.notebook).stem
COURSE = course_config.COURSE_DIR
BIN = Path(sys.executable).parent


def without_venv_path() -> dict[str, str]:
    """The environment of a shell where the venv is not activated: its scripts are not on PATH."""
    keep = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()]
    return {**os.environ, "PATH": os.pathsep.join(keep)}


def nbgrader(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    """``.venv/bin/nbgrader ARGS`` in ``cwd``, as a TA types it."""
    proc = subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=without_venv_path(), capture_output=True,
                          text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def tracked_course(root: Path) -> Path:
    """A course folder as a fresh clone has it: the git-tracked ``source/`` and ``nbgrader_config.py`` only."""
    listed = subprocess.run(["git", "ls-files", "source", "nbgrader_config.py"], cwd=COURSE, capture_output=True,
                            text=True, check=True).stdout.split()
    assert "nbgrader_config.py" in listed and f"source/{A.name}/{A.notebook}" in listed
    for rel in listed:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(COURSE / rel, root / rel)
    return root


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate_assignment_gives_the_committed_release(tmp_path):
    """formgrader's Generate on a fresh clone: a release identical to `autograder release`'s, one notebook each."""
    course = tracked_course(tmp_path)
    for name in course_config.ASSIGNMENTS:
        nbgrader("generate_assignment", name, "--force", cwd=course)
        assert files_of(course / "release" / name) == files_of(COURSE / "release" / name), name
        assert sorted(files_of(course / "release" / name)) == [course_config.assignment(name).notebook]


# ------------------------------------------------------------------------------------------------ Validate
@pytest.fixture(scope="module")
def validated(tmp_path_factory, models_dir, good_dense):
    """`nbgrader validate` on a good submission, the untouched release and a model that fails a check."""
    root = tmp_path_factory.mktemp("validate")
    cases = {
        "good": (COURSE / "solutions" / A.name / A.notebook, good_dense),
        "untouched": (COURSE / "release" / A.name / A.notebook, None),
        "failing": (COURSE / "release" / A.name / A.notebook, models_dir / "conv.keras"),
    }
    out = {}
    for case, (nb, model) in cases.items():
        folder = root / case
        folder.mkdir()
        shutil.copyfile(nb, folder / A.notebook)
        if model is not None:
            shutil.copyfile(model, folder / A.model_file)
        before = files_of(folder)
        proc = nbgrader("validate", A.notebook, cwd=folder, ok=False)
        out[case] = {"proc": proc, "before": before, "after": files_of(folder)}
    return out


def test_validate_passes_a_good_submission(validated):
    proc = validated["good"]["proc"]
    assert "Success! Your notebook passes all the tests." in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", ["good", "untouched", "failing"])
def test_validate_never_trains_or_changes_the_files(validated, case):
    """Validate reads the saved files as they are: nothing written, nothing changed (the notebook included)."""
    assert validated[case]["after"] == validated[case]["before"]


def said(proc) -> str:
    """What nbgrader printed, with its line breaks and indents as single spaces."""
    return " ".join(proc.stdout.split())


def test_validate_fails_a_missing_model_with_the_kits_message(validated):
    text = said(validated["untouched"]["proc"])
    assert "VALIDATION FAILED" in text
    assert "model file mnist_dense.keras not found" in text
    assert "NotImplementedError" not in text  # the empty answer cells were not run


def test_validate_fails_a_model_that_fails_a_check(validated):
    text = said(validated["failing"]["proc"])
    assert "VALIDATION FAILED" in text
    # the kit's own words, as the check cell and `autograder check` say them
    assert "CheckFailed: layer_types (1 pt): a fully connected network uses only Flatten, Dense, Dropout layers" in text
    assert "found Conv2D" in text


# ------------------------------------------------------------------------------------------------ Autograde
def submit(course: Path, student: str, nb: Path, model: Path | None, when: str) -> None:
    folder = course / "submitted" / student / A.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copyfile(nb, folder / A.notebook)
    if model is not None:
        shutil.copyfile(model, folder / A.model_file)
    (folder / "timestamp.txt").write_text(when)


def gradebook_scores(course: Path) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    scores = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(A.name):
            nb_sub = submission.notebooks[0]
            scores[submission.student.id] = {g.name.removeprefix("check_"): g.auto_score for g in nb_sub.grades}
    return scores


def kit_scores(out: Path) -> dict[str, dict[str, float]]:
    return {r.student: {c.id: float(c.score) for c in r.checks} for r in load_records(out, A.name)}


@pytest.fixture(scope="module")
def autograded(tmp_path_factory, models_dir, good_dense):
    """A small class autograded by nbgrader's own command, and the same class graded by `autograder grade`."""
    course = tracked_course(tmp_path_factory.mktemp("autograde"))
    with open(course / "nbgrader_config.py", "a") as f:  # the course grades by the quick profile's thresholds
        f.write('\nc.GradeWithKit.profile = "quick"\n')
    nbgrader("generate_assignment", A.name, cwd=course)
    release, solution = course / "release" / A.name / A.notebook, COURSE / "solutions" / A.name / A.notebook
    submit(course, "ada", solution, good_dense, "2026-12-01 10:00:00.000000 UTC")
    submit(course, "ben", release, models_dir / "conv.keras", "2026-12-01 10:00:00.000000 UTC")
    submit(course, "cleo", release, None, "2026-12-01 10:00:00.000000 UTC")
    submit(course, "dan", solution, models_dir / "dense.keras", "2026-12-01 10:00:00.000000 UTC")
    first = nbgrader("autograde", A.name, cwd=course)
    scores = {"first": gradebook_scores(course)}
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", A.name, str(course / "submitted"), "--out",
                           str(course / "by-cli"), "--profile", "quick"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    forced = nbgrader("autograde", A.name, "--force", cwd=course)
    scores["forced"] = gradebook_scores(course)
    # dan hands in again, later, with a better model: a plain autograde grades only what is new
    submit(course, "dan", solution, good_dense, "2026-12-02 10:00:00.000000 UTC")
    late = nbgrader("autograde", A.name, cwd=course)
    scores["late"] = gradebook_scores(course)
    return {"course": course, "scores": scores, "cli": kit_scores(course / "by-cli"), "runs": [first, forced, late]}


def test_autograde_records_the_kits_scores_check_by_check(autograded):
    cli = autograded["cli"]
    assert autograded["scores"]["first"] == cli
    assert autograded["scores"]["forced"] == cli
    assert cli["ada"]["layer_types"] == 1 and 0 < cli["ada"]["test_accuracy"] < 6  # partial credit, as the kit gives it
    assert cli["ben"]["layer_types"] == 0 and cli["cleo"]["test_accuracy"] == 0


def test_autograde_grades_a_late_resubmission(autograded):
    assert autograded["scores"]["late"]["dan"] == autograded["cli"]["ada"]  # the same model as ada's now
    assert autograded["scores"]["late"]["ada"] == autograded["cli"]["ada"]


def test_autograde_has_no_checksum_warnings_and_runs_no_notebook(autograded):
    for run in autograded["runs"]:
        assert "checksum" not in (run.stdout + run.stderr).lower()
        assert "graded by the course autograder" in run.stderr
    graded = nbformat.read(autograded["course"] / "autograded" / "ben" / A.name / A.notebook, as_version=4)
    cells = {notebook.grade_id(c): c for c in graded.cells}
    # nbgrader's Execute would have run the empty answer cells (NotImplementedError): nothing ran
    assert not [gid for gid, c in cells.items() if c.cell_type == "code" and c.get("outputs")
                and not gid.startswith(notebook.CHECK_CELL_PREFIX)]
    text = "".join(o.get("text", "") for o in cells["check_layer_types"].outputs)
    assert text.startswith("0 / 1 points:") and "a fully connected network uses only" in text


def test_generate_feedback_writes_the_kits_page(autograded):
    course = autograded["course"]
    nbgrader("generate_feedback", A.name, "--force", cwd=course)
    for student in ("ada", "ben", "cleo", "dan"):
        page = (course / "feedback" / student / A.name / f"{NB}.html").read_text()
        assert page == (course / "graded" / student / A.name / "feedback.html").read_text(), student
        assert "BEGIN HIDDEN TESTS" not in page and "AssertionError" not in page


def test_feedback_shows_a_tas_manual_score(autograded):
    from nbgrader.api import Gradebook

    course = autograded["course"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.find_grade("check_layer_types", NB, A.name, "ben").manual_score = 0.5
        gb.db.commit()
    try:
        nbgrader("generate_feedback", A.name, "--force", "--student", "ben", cwd=course)
        page = (course / "feedback" / "ben" / A.name / f"{NB}.html").read_text()
        assert "Your TA set this check&#x27;s score to 0.5 of 1 points" in page or \
            "Your TA set this check's score to 0.5 of 1 points" in page
    finally:
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            gb.find_grade("check_layer_types", NB, A.name, "ben").manual_score = None
            gb.db.commit()


def test_export_has_a_column_per_check(autograded):
    course = autograded["course"]
    nbgrader("export", "--to", "export.csv", cwd=course)
    with open(course / "export.csv", newline="") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    for student, scores in autograded["cli"].items():
        row = rows[student]
        assert float(row["score"]) == pytest.approx(sum(autograded["scores"]["late"][student].values()))
        for check in A.checks:
            assert float(row[check.id]) == autograded["scores"]["late"][student][check.id]
