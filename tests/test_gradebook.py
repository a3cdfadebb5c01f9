"""Per-check scores reach nbgrader's gradebook: real nbgrader API, real `nbgrader export` and `autograde`."""

from __future__ import annotations

import csv
import os
import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import nbformat
import pytest
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning

import course_config
from autograder.exporters.gradebook import db_url_of, ensure_assignment, notebook_id, write_gradebook
from autograder.notebook import nbgrader_env
from autograder.results import CheckResult, StudentResult

COURSE = course_config.COURSE_DIR
A = course_config.assignment("mnist_dense")
NB = notebook_id(A)
# Fraction of each check's points per student (in course_config's check order).
FRACTIONS = {
    "ada": [1, 1, 1, 1, 1],
    "ben": [0, 0, 0, 0, 0],
    "cleo": [1, 1, 0, 1, 0.5],
}


def result(student: str, fractions, flags=()) -> StudentResult:
    checks = [CheckResult(c.id, c.title, c.points, c.points * f, f"{c.id}: {f}", "passed" if f == 1 else "failed")
              for c, f in zip(A.checks, fractions)]
    return StudentResult(student, A.name, checks, "", 0.0, flags=[{"check": c, "reason": "look"} for c in flags])


def results(**overrides) -> list[StudentResult]:
    fractions = {**FRACTIONS, **overrides}
    return [result(s, f, flags=("test_accuracy",) if s == "cleo" else ()) for s, f in fractions.items()]


def existing_course_db(path: Path) -> str:
    """A course gradebook that already has another assignment, its students and a grade."""
    url = db_url_of(path)
    # nbgrader's Gradebook runs `alembic` to create a database: the venv's, as an activated venv would.
    with mock.patch.dict(os.environ, nbgrader_env()), Gradebook(url) as gb:
        gb.add_assignment("hw0")
        gb.add_notebook("intro", "hw0")
        gb.add_grade_cell("q1", "intro", "hw0", max_score=3, cell_type="code")
        gb.add_student("zoe")
        gb.add_student("ada", first_name="Ada", last_name="Lovelace")
        with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush
            warnings.simplefilter("ignore", SAWarning)
            gb.add_submission("hw0", "zoe")
        gb.find_grade("q1", "intro", "hw0", "zoe").auto_score = 2.0
        gb.db.commit()
    return url


def nbgrader_export(db_url: str, tmp: Path) -> dict[tuple[str, str], dict]:
    """`nbgrader export` of the whole gradebook, as {(assignment, student): row}."""
    out = tmp / "grades.csv"
    res = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--CourseDirectory.db_url={db_url}", f"--to={out}",
         "--log-level=WARN"],
        cwd=tmp, capture_output=True, text=True, env=nbgrader_env(),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    with out.open() as f:
        return {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}


def dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The results of three students written once into an existing course db: (db path, counts)."""
    db = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    existing_course_db(db)
    counts = write_gradebook(results(), str(db))
    return db, counts


def test_check_scores_read_back_through_nbgrader_api(written):
    db, counts = written
    assert counts == {"students": 3, "new_students": 2, "new_submissions": 3, "grades": 15}
    with Gradebook(db_url_of(db)) as gb:
        notebook = gb.find_notebook(NB, A.name)
        cells = {c.name: c for c in notebook.grade_cells}
        assert set(cells) == {f"check_{c.id}" for c in A.checks}
        assert gb.find_assignment(A.name).max_score == A.max_score
        for c in A.checks:
            assert cells[f"check_{c.id}"].max_score == c.points
        # the source nbgrader restores on autograde is the released cell: no hidden tests, no checksum warnings
        source = {c.name: c for c in notebook.source_cells}
        assert "course_check.verdict('test_accuracy')" in source["check_test_accuracy"].source
        assert "HIDDEN TESTS" not in source["check_test_accuracy"].source
        for r in results():
            for check in r.checks:
                grade = gb.find_grade(f"check_{check.id}", NB, A.name, r.student)
                assert grade.auto_score == check.score and grade.manual_score is None
                assert grade.score == check.score and grade.max_score == check.points
                assert grade.needs_manual_grade == (r.student == "cleo" and check.id == "test_accuracy")
            assert gb.find_submission(A.name, r.student).score == r.score
        # what was there before is untouched
        assert gb.find_student("ada").first_name == "Ada"
        assert gb.find_grade("q1", "intro", "hw0", "zoe").score == 2.0
        assert {a.name for a in gb.assignments} == {"hw0", A.name}


def test_nbgrader_export_shows_our_totals(written, tmp_path):
    db, _ = written
    rows = nbgrader_export(db_url_of(db), tmp_path)
    for r in results():
        row = rows[(A.name, r.student)]
        assert float(row["raw_score"]) == float(row["score"]) == r.score
        assert float(row["max_score"]) == r.max_score == A.max_score
    assert float(rows[(A.name, "zoe")]["score"]) == 0.0  # no submission of mnist_dense
    assert float(rows[("hw0", "zoe")]["score"]) == 2.0 and float(rows[("hw0", "zoe")]["max_score"]) == 3.0


def test_writing_twice_gives_the_same_db(written, tmp_path):
    db = tmp_path / "gradebook.db"
    shutil.copyfile(written[0], db)
    before = dump(db)
    counts = write_gradebook(results(), f"sqlite:///{db}")
    assert counts == {"students": 3, "new_students": 0, "new_submissions": 0, "grades": 15}
    assert dump(db) == before


def test_manual_score_of_a_ta_survives_a_rewrite(written, tmp_path):
    db = tmp_path / "gradebook.db"
    shutil.copyfile(written[0], db)
    with Gradebook(db_url_of(db)) as gb:
        grade = gb.find_grade("check_test_accuracy", NB, A.name, "cleo")
        grade.manual_score = 5.0  # the TA looked at the flagged check
        grade.needs_manual_grade = False
        gb.db.commit()
    regraded = results(cleo=[1, 1, 1, 1, 0], ben=[1, 0, 0, 0, 0])
    write_gradebook(regraded, str(db))
    with Gradebook(db_url_of(db)) as gb:
        grade = gb.find_grade("check_test_accuracy", NB, A.name, "cleo")
        assert (grade.manual_score, grade.auto_score, grade.score) == (5.0, 0.0, 5.0)
        assert not grade.needs_manual_grade  # flagged again, but a TA has scored it
        assert gb.find_grade("check_output_layer", NB, A.name, "cleo").auto_score == 1.0
        assert gb.find_grade("check_layer_types", NB, A.name, "ben").auto_score == 1.0
    rows = nbgrader_export(db_url_of(db), tmp_path)
    assert float(rows[(A.name, "cleo")]["score"]) == 4.0 + 5.0
    assert float(rows[(A.name, "ben")]["score"]) == 1.0


def test_results_that_do_not_fit_course_config_are_refused(tmp_path):
    db = tmp_path / "gradebook.db"
    stale = result("ada", [1] * 5)
    stale.checks[-1].points = 7  # graded when test_accuracy was worth 7 points
    with pytest.raises(ValueError, match="course_config now says 6"):
        write_gradebook([stale], str(db))
    unknown = result("ada", [1] * 5)
    unknown.checks[0].id = "no_such_check"
    with pytest.raises(ValueError, match="not in course_config"):
        write_gradebook([unknown], str(db))
    assert not db.exists()


def test_a_bare_path_is_an_absolute_sqlite_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert db_url_of("gradebook.db") == f"sqlite:///{tmp_path.resolve() / 'gradebook.db'}"
    assert db_url_of("postgresql://u@host/db") == "postgresql://u@host/db"


# Tiny working code for the solution cells of mnist_dense: trains a few seconds.
TINY = {
    "normalise": 'x_train_norm = x_train.astype("float32") / 255.0\nx_test_norm = x_test.astype("float32") / 255.0',
    "build_model": 'def build_model():\n    return keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),\n'
                   '        keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")])',
    "compile": 'model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])',
    "train": "history = model.fit(x_fit[:512], y_fit[:512], epochs=1, batch_size=128,\n"
             "                    validation_data=(x_val, y_val), verbose=0)",
}


@pytest.mark.slow
def test_nbgrader_autograde_without_the_kit_gives_no_points_to_checks(tmp_path, mnist):
    """In a course whose nbgrader_config.py does not load the kit, `nbgrader autograde` runs the notebook and
    a notebook that runs without errors still gets 0 on every check, saying why; write_gradebook then
    records our scores in the same gradebook."""
    root = tmp_path / "course"
    url = db_url_of(root / "gradebook.db")
    sub = root / "submitted" / "stu" / A.name
    shutil.copytree(COURSE / "release" / A.name, sub)
    nb = nbformat.read(sub / A.notebook, 4)
    for cell in nb.cells:
        gid = cell.metadata["nbgrader"]["grade_id"]
        if cell.metadata["nbgrader"].get("solution"):
            cell.source = TINY[gid]
    nbformat.write(nb, sub / A.notebook)
    # the assignment as write_gradebook records it, then nbgrader's own autograde on that db
    ensure_assignment(A, url)
    res = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", A.name, "--create", "--force",
         f"--CourseDirectory.root={root}", f"--CourseDirectory.db_url={url}", "--log-level=WARN"],
        cwd=root, capture_output=True, text=True, env=nbgrader_env(),
    )
    assert res.returncode == 0, res.stdout + res.stderr
    graded = nbformat.read(root / "autograded" / "stu" / A.name / A.notebook, 4)
    errors = {c.metadata["nbgrader"]["grade_id"]: [o for o in c.get("outputs", []) if o.output_type == "error"]
              for c in graded.cells if c.cell_type == "code"}
    assert not [gid for gid, errs in errors.items() if errs and not gid.startswith("check_")], errors
    for c in A.checks:
        (err,) = errors[f"check_{c.id}"]
        assert err.ename == "CheckFailed" and "scored by the course autograder" in err.evalue
        assert "autograder.nbgrader_plugins.configure" in err.evalue
    assert (root / "autograded" / "stu" / A.name / A.model_file).is_file()  # the notebook ran to the end
    with Gradebook(url) as gb:
        for c in A.checks:
            assert gb.find_grade(f"check_{c.id}", NB, A.name, "stu").auto_score == 0
        assert gb.find_submission(A.name, "stu").score == 0
    # our grader's scores replace nbgrader's zeros
    write_gradebook([result("stu", FRACTIONS["cleo"])], url)
    with Gradebook(url) as gb:
        assert gb.find_submission(A.name, "stu").score == result("stu", FRACTIONS["cleo"]).score
