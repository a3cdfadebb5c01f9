"""release/ and solutions/ come from source/ through real nbgrader, and no solution leaks."""

from __future__ import annotations

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
    problems = release.drift(name, course_dir=tmp_path)
    assert f"release/{name}/{nb_path.name} differs from what source/ generates" in problems
    assert f"solutions/{name}/extra.txt is not produced from source/" in problems


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
    save = nb.cells[-1]
    assert save.metadata["nbgrader"]["locked"]
    for spec in a.models:
        assert f'"{spec.file}"' in save.source, f"the last cell must save {spec.file}"
    for helper in a.helpers:
        assert (COURSE / "release" / name / helper).is_file()
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
