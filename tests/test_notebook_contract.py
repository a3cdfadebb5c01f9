"""The notebook contract (docs/notebook_contract.md): checked by release, named in the instructor's words, and met by
the notebook `autograder new` writes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import nbformat
import pytest

import course_config
from autograder import scaffold
from autograder.notebook import contract_problems, grade_id
from autograder.release import ReleaseError, sync_grading_cells, with_grading_cells

A = course_config.MNIST_DENSE


def source(assignment=A):
    return nbformat.read(course_config.COURSE_DIR / "source" / assignment.name / assignment.notebook, as_version=4)


@pytest.mark.parametrize("name", sorted(course_config.ASSIGNMENTS))
def test_every_shipped_source_notebook_follows_the_contract(name):
    a = course_config.assignment(name)
    assert contract_problems(source(a), a) == []


def cell(nb, cell_id):
    return next(c for c in nb.cells if grade_id(c) == cell_id)


def untag(nb):
    cell(nb, "parameters").metadata["tags"] = []


def no_epochs(nb):
    c = cell(nb, "parameters")
    c.source = c.source.replace("EPOCHS = 10", "EPOCHS_TYPO = 10")


def no_imports_id(nb):
    cell(nb, "imports").metadata["nbgrader"]["grade_id"] = "libraries"


def saves_elsewhere(nb):
    c = cell(nb, "save_model")
    c.source = c.source.replace("mnist_dense.keras", "model.keras")


def no_validation(nb):
    c = cell(nb, "validation_split")
    c.source = c.source.replace("x_val, y_val =", "x_check, y_check =")


def no_solutions(nb):
    for c in nb.cells:
        c.source = c.source.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")


def unpaired(nb):
    c = cell(nb, "train")
    c.source = c.source.replace("### END SOLUTION", "")


def twice(nb):
    cell(nb, "train").metadata["nbgrader"]["grade_id"] = "compile"


BROKEN = {  # how the notebook is broken: what release says
    "untagged": (untag, "no code cell is tagged 'parameters': tag the cell that sets EPOCHS"),
    "no-epochs": (no_epochs, "the cell tagged 'parameters' does not set EPOCHS"),
    "no-imports": (no_imports_id, "no code cell has grade_id 'imports': give it to the cell of imports"),
    "other-file": (saves_elsewhere, 'no code cell saves mnist_dense.keras (its name written out, as in '
                                    'model.save("mnist_dense.keras"))'),
    "no-validation": (no_validation, "no code cell sets x_val or y_val: the check before hand-in scores the saved model on "
                                     "x_val and y_val"),
    "no-solutions": (no_solutions, "no code cell has a ### BEGIN SOLUTION ... ### END SOLUTION block"),
    "unpaired": (unpaired, "cell train: ### BEGIN SOLUTION and ### END SOLUTION do not pair up"),
    "twice": (twice, "grade_id compile is given to more than one cell"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_release_names_what_a_source_notebook_lacks(case, tmp_path):
    breaks, message = BROKEN[case]
    nb = source()
    breaks(nb)
    assert [p for p in contract_problems(nb, A) if message in p], contract_problems(nb, A)
    assert len(contract_problems(nb, A)) == 1, contract_problems(nb, A)  # only what is wrong
    course = tmp_path / "course"
    path = course / "source" / A.name / A.notebook
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    with pytest.raises(ReleaseError) as refused:  # the first step of `autograder release` and of nbgrader's Generate
        sync_grading_cells(A, course)
    assert str(refused.value).startswith(f"source/{A.name}/{A.notebook} does not follow the notebook contract "
                                         "(docs/notebook_contract.md):\n  - ")
    assert message in str(refused.value)


@pytest.mark.parametrize("base", ["mnist_dense", "susy"])
def test_new_writes_a_notebook_that_follows_the_contract(base, tmp_path):
    """`autograder new` for an assignment described in course_config: the notebook release takes as it is."""
    a = dataclasses.replace(course_config.assignment(base), name="lecture5", notebook="lecture5.ipynb",
                            title="Lecture 5")
    nb = scaffold.notebook(a)
    assert contract_problems(nb, a) == []
    released = with_grading_cells(nb, a)  # the helper cell, the check before hand-in and the graded cells
    ids = [grade_id(c) for c in released.cells]
    assert ids.index("fetch_helpers") + 1 == ids.index("imports") and "hand_in_check" in ids
    assert all(f"check_{c.id}" in ids for c in a.checks)
    # its parameters cell sets the grader's parameters; the data cells come from the shipped notebook on its dataset
    assert all(name in cell(nb, "parameters").source for values in a.parameters.values() for name in values)
    assert cell(nb, "load_data").source == cell(source(course_config.assignment(base)), "load_data").source


def test_new_refuses_to_overwrite_a_source_notebook(tmp_path):
    done = subprocess.run([sys.executable, "-m", "autograder", "new", A.name], capture_output=True, text=True,
                          cwd=course_config.COURSE_DIR)
    assert done.returncode == 2
    assert f"{A.notebook} exists; give --force to overwrite it" in done.stderr
