"""release/ and solutions/ come from source/ through real nbgrader, and no solution leaks."""

from __future__ import annotations

import dataclasses
import re
import shutil

import nbformat
import pytest

import course_config
from autograder import release

COURSE = course_config.COURSE_DIR
NAMES = list(course_config.ASSIGNMENTS)
SECRET_BLOCK = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)(.*?)### END \1", re.S)


@pytest.mark.parametrize("name", NAMES)
def test_release_and_solutions_are_in_sync_with_source(name):
    assert release.drift(name) == [], "run `autograder release` and commit release/ and solutions/"


def test_drift_is_detected(tmp_path):
    name = NAMES[0]
    for part in ("source", "release", "solutions"):
        shutil.copytree(COURSE / part / name, tmp_path / part / name)
    nb_path = tmp_path / "release" / name / course_config.assignment(name).notebook
    nb_path.write_text(nb_path.read_text().replace("YOUR CODE HERE", "YOUR CODE THERE", 1))
    (tmp_path / "solutions" / name / "extra.txt").write_text("stray")
    # A graded cell whose points no longer match course_config.
    src_path = tmp_path / "source" / name / nb_path.name
    nb = nbformat.read(src_path, 4)
    graded = next(c for c in nb.cells if c.metadata["nbgrader"].get("grade"))
    graded.metadata["nbgrader"]["points"] += 1
    nbformat.write(nb, src_path)
    problems = release.drift(name, course_dir=tmp_path)
    assert f"release/{name}/{nb_path.name} differs from what source/ generates" in problems
    assert f"solutions/{name}/extra.txt is not produced from source/" in problems
    assert (f"source/{name}/{nb_path.name}: its generated cells (helper cell, grading section) "
            "are out of sync with course_config and autograder/") in problems


def secret_lines(name):
    a = course_config.assignment(name)
    text = "\n".join(c.source for c in nbformat.read(COURSE / "source" / name / a.notebook, 4).cells)
    lines = set()
    for _, block in SECRET_BLOCK.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if len(line) > 8 and not line.startswith("#"):
                lines.add(line)
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_no_solution_or_hidden_test_text_reaches_release(name):
    secrets = secret_lines(name)
    assert secrets, "the source notebook should have solution blocks"
    for path in (COURSE / "release" / name).rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path
            if path.suffix == ".ipynb":  # the cells' text, as a student reads it (JSON escapes quotes)
                text = "\n".join(c.source for c in nbformat.reads(text, 4).cells)
            leaked = [line for line in secrets if line in text]
            assert not leaked, f"{path.name} contains solution code: {leaked[:3]}"


@pytest.mark.parametrize("name", NAMES)
def test_release_notebook_is_what_a_student_needs(name):
    a = course_config.assignment(name)
    nb = nbformat.read(COURSE / "release" / name / a.notebook, 4)
    solution_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert solution_cells and all("YOUR CODE HERE" in c.source and "NotImplementedError" in c.source for c in solution_cells)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0].metadata["nbgrader"]["locked"]
    for profile in course_config.PROFILES:
        for var in a.parameters.get(profile, {}):
            assert re.search(rf"^{var} = ", params[0].source, re.M), f"parameters cell lacks {var}"
    # The save cell, then the student's check of the saved files, then the grading section, which ends
    # the notebook.
    section = len(nb.cells) - 1 - len(a.checks)
    assert nb.cells[section].metadata["nbgrader"]["grade_id"] == release.GRADING_MD_ID
    md, check, save = nb.cells[section - 2], nb.cells[section - 1], nb.cells[section - 3]
    assert [c.metadata["nbgrader"]["grade_id"] for c in (md, check)] == [release.CHECK_MD_ID, release.CHECK_SAVED_ID]
    assert save.metadata["nbgrader"]["locked"] and check.metadata["nbgrader"]["locked"]
    for spec in a.models:
        assert f'"{spec.file}"' in save.source, f"the cell before the student's check must save {spec.file}"
        assert f"'variable': '{spec.variable}'" in check.source
    assert "check_before_hand_in(FACTS, globals())" in check.source
    # One file: the notebook carries its helpers (the helper cell), nothing else is released.
    assert sorted(p.name for p in (COURSE / "release" / name).iterdir()) == [a.notebook]
    assert "tf.keras" not in "\n".join(c.source for c in nb.cells)


@pytest.mark.parametrize("name", NAMES)
def test_source_notebook_states_the_course_facts(name):
    a = course_config.assignment(name)
    nb = nbformat.read(COURSE / "source" / name / a.notebook, 4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert None not in ids and len(ids) == len(set(ids)), "every cell needs a unique nbgrader grade_id"
    text = "\n".join(c.source for c in nb.cells)
    if a.max_params:
        assert f"{a.max_params:,}" in text, "the notebook must state the parameter budget from course_config"
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit source notebooks without outputs"


def grade_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


@pytest.mark.parametrize("part", ["source", "release"])
@pytest.mark.parametrize("name", NAMES)
def test_one_graded_cell_per_check_with_its_points(name, part):
    a = course_config.assignment(name)
    nb = nbformat.read(COURSE / part / name / a.notebook, 4)
    graded = grade_cells(nb)
    assert [c.metadata["nbgrader"]["grade_id"] for c in graded] == [f"check_{c.id}" for c in a.checks]
    for cell, check in zip(graded, a.checks):
        meta = cell.metadata["nbgrader"]
        assert cell.cell_type == "code" and cell.id == meta["grade_id"]
        assert meta["points"] == check.points and meta["locked"] and not meta["solution"]
        assert meta["schema_version"] == 3
        assert check.id in cell.source and check.title in cell.source
    # The section ends the notebook: its markdown cell, then the graded cells.
    assert nb.cells[-len(graded) - 1:] == [nb.cells[-len(graded) - 1]] + graded
    md = nb.cells[-len(graded) - 1]
    assert md.cell_type == "markdown" and md.metadata["nbgrader"]["locked"]
    assert md.source.startswith("## How this notebook is graded")
    assert sum(c.metadata["nbgrader"]["points"] for c in graded) == a.max_score


@pytest.mark.parametrize("name", NAMES)
def test_graded_cells_are_the_same_in_source_release_and_solutions(name):
    """No hidden tests: what nbgrader records at Generate is what students get, checksums included (so
    autograde never warns that a check cell changed), and each cell gives the check before hand-in's verdict."""
    a = course_config.assignment(name)
    cells = {part: grade_cells(nbformat.read(COURSE / part / name / a.notebook, 4))
             for part in ("source", "release", "solutions")}
    for cell, check in zip(cells["release"], a.checks):
        assert "HIDDEN TESTS" not in cell.source and "AssertionError" not in cell.source
        assert cell.source.startswith(release.VALIDATE_MARK)  # it runs under nbgrader's Validate
        assert cell.source.endswith(f"course_check.verdict({check.id!r})")
    assert [c.source for c in cells["source"]] == [c.source for c in cells["release"]] == \
        [c.source for c in cells["solutions"]]
    from nbgrader.utils import compute_checksum

    for mine, theirs in zip(cells["source"], cells["release"]):  # nbgrader records the source's, checks the release's
        assert theirs.metadata["nbgrader"]["checksum"] == compute_checksum(theirs) == compute_checksum(mine)


def test_sync_grading_cells_follows_course_config(tmp_path):
    """Changed points (or a removed check) in course_config replace the section; a second sync is a no-op."""
    a = course_config.assignment("mnist_dense")
    shutil.copytree(COURSE / "source" / a.name, tmp_path / "source" / a.name)
    changed = dataclasses.replace(
        a, checks=tuple(dataclasses.replace(c, points=c.points + 0.5) for c in a.checks[1:])
    )
    assert release.sync_grading_cells(a, tmp_path, write=False) is False
    assert release.sync_grading_cells(changed, tmp_path) is True
    assert release.sync_grading_cells(changed, tmp_path) is False
    nb = nbformat.read(tmp_path / "source" / a.name / a.notebook, 4)
    graded = grade_cells(nb)
    assert [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["points"]) for c in graded] == [
        (f"check_{c.id}", c.points) for c in changed.checks
    ]
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells]
    assert ids.count(release.GRADING_MD_ID) == 1
    assert ids.index(release.CHECK_MD_ID) == ids.index("save_model") + 1  # the student's check, then grading
    assert ids.index(release.GRADING_MD_ID) == ids.index(release.CHECK_SAVED_ID) + 1 == ids.index("save_model") + 3
    md = " ".join(nb.cells[ids.index(release.GRADING_MD_ID)].source.split())
    assert f"({changed.max_score:g} points in all)" in md
    for check_id, threshold in a.thresholds[course_config.DEFAULT_PROFILE].items():  # full and partial credit
        assert all(f">= {t.minimum:.4f}" in md for t in threshold.tiers) and f"`{check_id}`" in md
    # Everything else in the notebook is untouched.
    original = nbformat.read(COURSE / "source" / a.name / a.notebook, 4)
    generated = (release.GRADING_MD_ID, release.CHECK_SAVED_ID)  # the student's check states the points too
    kept = [c for c in nb.cells if c.id not in generated and not c.id.startswith("check_")]
    assert kept == [c for c in original.cells if c.id not in generated and not c.id.startswith("check_")]
    facts = nb.cells[ids.index(release.CHECK_SAVED_ID)].source
    assert all(f"'points': {c.points}" in facts for c in changed.checks)
