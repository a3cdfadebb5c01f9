"""Why a re-executed notebook saved no model file: the cell that saves it, followed back to the first error
that left its inputs undefined (missing.cause_of_missing), never an unrelated error of another cell."""

from __future__ import annotations

import dataclasses
import time

import nbformat
import pytest

import course_config
from autograder.grading import missing
from autograder.notebook import grade_id

DNN = "susy_dnn.keras"


def cell(source: str, gid: str | None = None, error: tuple[str, str] | None = None, ran: bool = True, tags=()):
    """A code cell as nbclient leaves it: run (an execution count) or not, with its error output if it raised."""
    c = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)} if tags else {})
    if gid:
        c.metadata["nbgrader"] = {"grade_id": gid}
    c.execution_count = 1 if ran or error else None
    if error:
        c.outputs = [nbformat.v4.new_output("error", ename=error[0], evalue=error[1], traceback=[])]
    return c


def notebook(*cells):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# SUSY"), *cells])
    nbformat.validate(nb)
    return nb.cells


def test_a_failed_import_is_followed_through_the_name_errors_an_unrelated_assertion_is_not_named():
    cells = notebook(
        cell("import numpy as np\nimport keras"),
        cell("logreg = make_logreg()", "logreg"),
        cell("assert isinstance(logreg, LogisticRegression), 'logreg should be a LogisticRegression'", "logreg_check",
             ("AssertionError", "logreg should be a LogisticRegression or a Pipeline ending in one, not SGDClassifier")),
        cell("import catboost\ntrees = catboost.CatBoostClassifier()", "trees",
             ("ModuleNotFoundError", "No module named 'catboost'")),
        cell("def build_dnn():\n    return keras.Sequential([])", "build_dnn"),
        cell("dnn = build_dnn()\ndnn.fit(X, y)", "train_dnn"),
        cell('sio.dump(logreg, "susy_logreg.skops")\nsio.dump(trees, "susy_trees.skops")\ndnn.save("susy_dnn.keras")',
             "save_models", ("NameError", "name 'trees' is not defined")),
    )
    said = missing.cause_of_missing(cells, DNN)
    assert said.startswith("cell 5 (trees) raised ModuleNotFoundError: No module named 'catboost', which left trees "
                           "undefined in cell 8 (save_models), the cell that saves it: catboost is not installed where "
                           "the grader runs notebooks, which have only the course's packages (such as NumPy, "), said
    assert "Keras" in said and "AssertionError" not in said and "logreg_check" not in said
    # Numbered as the student sees the notebook: without the grader's parameter cell.
    cells.insert(1, cell("EPOCHS = 2", tags=[missing.INJECTED_TAG]))
    assert missing.cause_of_missing(cells, DNN, injected_at=1) == said


def test_a_chain_of_name_errors_is_told_from_the_root_to_the_cell_that_saves():
    cells = notebook(
        cell("X, y = load_susy(stop=N)", "load_data", ("FileNotFoundError", "[Errno 2] No such file: '/data/susy.npz'")),
        cell("X_fit = X[:100]", "split", ("NameError", "name 'X' is not defined")),
        cell("for X_fit in []:\n    pass\nprint(X_fit)"),  # binds X_fit too, in a loop, but raised nothing itself
        cell("%time dnn = build(X_fit)\n", "dnn_summary", ("NameError", "name 'X_fit' is not defined")),
        cell("dnn.save('susy_dnn.keras')", "save_models", ("NameError", "name 'dnn' is not defined")),
    )
    said = missing.cause_of_missing(cells, DNN)
    # The last cell before that binds X_fit ran without an error: that is where the trail ends, truthfully.
    assert said == ("cell 5 (dnn_summary) raised NameError: name 'X_fit' is not defined, though cell 4, which "
                    "defines X_fit, ran without an error, which left dnn undefined in cell 6 (save_models), the cell "
                    "that saves it")
    del cells[3]
    said = missing.cause_of_missing(cells, DNN)
    assert said == ("cell 2 (load_data) raised FileNotFoundError: [Errno 2] No such file: '/data/susy.npz', which "
                    "left X undefined in cell 3 (split), X_fit undefined in cell 4 (dnn_summary) and dnn undefined in "
                    "cell 5 (save_models), the cell that saves it")


def test_the_cell_that_saves_is_named_with_its_own_error_or_what_became_of_it():
    saves = 'sio.dump(logreg, "susy_logreg.skops")\nkeras.saving.save_model(dnn, "susy_dnn.keras")'
    own = notebook(cell("dnn = make()"), cell(saves, "save_models", ("OSError", "[Errno 28] No space left on device\nmore")))
    assert missing.cause_of_missing(own, DNN) == (
        "cell 3 (save_models), the cell that saves it, raised OSError: [Errno 28] No space left on device")
    assert missing.cause_of_missing(notebook(cell("dnn = make()"), cell(saves)), DNN) == (
        "cell 3, the cell that saves it, ran without an error but left no susy_dnn.keras next to the notebook")
    assert missing.cause_of_missing(notebook(cell(saves, ran=False)), DNN) == (
        "cell 2, the cell that saves it, did not run (the run ended before it)")
    assert missing.cause_of_missing(notebook(cell(saves, ran=False, tags=["skip-execution"])), DNN).endswith(
        "did not run (it is tagged skip-execution)")
    undefined = notebook(cell("x = 1", error=("AssertionError", "unrelated")),
                         cell(saves, error=("NameError", "name 'dnn' is not defined")))
    assert missing.cause_of_missing(undefined, DNN) == (
        "cell 3, the cell that saves it, raised NameError: name 'dnn' is not defined, and no cell before it defines dnn")
    # Saved under another accepted name (the .h5 twin): that cell is the one.
    twin = notebook(cell("dnn.save('susy_dnn.h5')", "save", ("ValueError", "bad")))
    assert missing.cause_of_missing(twin, [DNN, "susy_dnn.h5"]).startswith("cell 2 (save), the cell that saves it")


def test_no_cell_that_saves_it():
    cells = notebook(cell("dnn = build()", error=("AssertionError", "unrelated")), cell("print('saving later')"))
    cells.append(nbformat.v4.new_markdown_cell('Save with `dnn.save("susy_dnn.keras")`'))  # prose does not save
    assert missing.cause_of_missing(cells, DNN) == "the notebook has no cell that saves susy_dnn.keras"
    assert missing.cause_of_missing([], DNN) is None


def test_long_chains_are_bounded_and_what_comes_back_from_the_sandbox_is_checked():
    chain = [cell("a0 = 1 / 0", "root", ("ZeroDivisionError", "division by zero"))]
    chain += [cell(f"a{i} = a{i - 1}", error=("NameError", f"name 'a{i - 1}' is not defined")) for i in range(1, 300)]
    chain.append(cell("a299.save('susy_dnn.keras')", "save", ("NameError", "name 'a299' is not defined")))
    start = time.perf_counter()
    said = missing.cause_of_missing(notebook(*chain), DNN)
    assert time.perf_counter() - start < 2
    assert len(said) < 600 and "a299 undefined in cell 302 (save), the cell that saves it" in said
    assert said.startswith("cell 277 raised NameError: name 'a274' is not defined (the grader stopped following the "
                           "trail after 25 cells), which left a275 undefined in cell 278, a276 undefined in cell 279, "
                           "… (22 more cells) and a299 undefined in cell 302 (save), the cell that saves it"), said
    # A name used before its own cell binds it (a cycle of cells) ends at the first cell that cannot be followed.
    loop = notebook(cell("b = a", error=("NameError", "name 'a' is not defined")),
                    cell("a = b", error=("NameError", "name 'b' is not defined")),
                    cell("a.save('susy_dnn.keras')", "save", ("NameError", "name 'a' is not defined")))
    assert missing.cause_of_missing(loop, DNN).startswith("cell 2 raised NameError: name 'a' is not defined, and no "
                                                          "cell before it defines a, which left b undefined in cell 3")
    # Malformed cells, huge texts and odd types are left out or cut, never trusted.
    hostile = [None, 7, {"cell_type": "code", "source": 12}, {"cell_type": "code", "source": ["dnn.save(", 3]},
               {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": ["x"]}, "tags": "skip-execution"},
                "source": "dnn.save('susy_dnn.keras')", "execution_count": "1",
                "outputs": [{"output_type": "error", "ename": "E" * 10_000, "evalue": ["x"] * 10_000}]}]
    said = missing.cause_of_missing(hostile, DNN)
    assert said.startswith("cell 5, the cell that saves it, raised EEEE") and len(said) < 400, said
    assert missing.cause_of_missing({"cells": "no"}, DNN) is None and missing.cause_of_missing("x" * 10, DNN) is None
    # A notebook made to be slow to read is read only so far: 2,000 cells of 20,000 characters that name dnn.
    slow = [{"cell_type": "code", "source": "print(dnn)\n" * 2000, "execution_count": 1}] * 1999
    slow.append(cell("dnn.save('susy_dnn.keras')", error=("NameError", "name 'dnn' is not defined")))
    start = time.perf_counter()
    assert missing.cause_of_missing(slow, DNN).endswith("and no cell before it defines dnn")
    assert time.perf_counter() - start < 3


def test_a_course_helper_that_did_not_import_is_not_called_uninstalled():
    cells = notebook(cell("from course_data import load_susy\nimport skops.io as sio", "imports",
                          ("ModuleNotFoundError", "No module named 'course_data'")),
                     cell("sio.dump(dnn, 'susy_dnn.keras')", "save", ("NameError", "name 'sio' is not defined")))
    said = missing.cause_of_missing(cells, DNN, helpers=("course_data", "course_check"))
    assert said == ("cell 2 (imports) raised ModuleNotFoundError: No module named 'course_data', which left sio "
                    "undefined in cell 3 (save), the cell that saves it")
    assert "not installed" in missing.cause_of_missing(cells, DNN)


# ------------------------------------------------------------------------------------------------------------
# One real re-execution: the SUSY solution with a logistic regression the sanity check rejects, and boosted
# trees from a package the grader does not have.
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_re_executed_notebook_names_the_failed_import_for_the_model_it_did_not_save(tmp_path):
    from autograder.datasets import tasks
    from autograder.grading.submission import grade_submission
    from autograder.release import runnable_solution

    # The solution as the quick profile runs it, on fewer events and one epoch (the cause does not depend on them).
    a = dataclasses.replace(course_config.SUSY, parameters={"quick": {"N_TRAIN": 2000, "EPOCHS": 1}})
    quick = course_config.PROFILES["quick"]
    folder = runnable_solution(a, tmp_path / "student" / a.name)
    nb = nbformat.read(folder / a.notebook, as_version=4)
    by_id = {grade_id(c): c for c in nb.cells}
    number = {gid: i + 1 for i, c in enumerate(nb.cells) if (gid := grade_id(c))}  # as the student sees the cells
    by_id["logreg"].source = ("from sklearn.naive_bayes import GaussianNB\n"  # the sanity check after it fails
                              "logreg = make_pipeline(StandardScaler(), GaussianNB()).fit(X_fit, y_fit)")
    by_id["trees"].source = ("import catboost\n"
                             "trees = catboost.CatBoostClassifier(iterations=100, verbose=0).fit(X_fit, y_fit)")
    nbformat.write(nb, folder / a.notebook)
    result = grade_submission("student", folder, a, tasks.load_task(a, quick), profile=quick, execute=True)

    checks = {c.id: c.output for c in result.checks}
    for check in ("dnn_family", "dnn_auc", "trees_family"):
        said = checks[check]
        assert "catboost is not installed where the grader runs notebooks" in said, said
        assert "AssertionError" not in said and "logreg_check" not in said, said
    assert (f"the notebook did not save it (cell {number['trees']} (trees) raised ModuleNotFoundError: No module named "
            f"'catboost', which left trees undefined in cell {number['save_models']} (save_models), the cell that saves "
            "it: catboost is not installed where the grader runs notebooks") in checks["dnn_family"]
    assert result.extra["execution"]["not_saved"].keys() == {"susy_trees.skops", DNN}
    # The notebook's first error is still told, where it always was: in the notes on the run.
    assert "the notebook raised AssertionError: logreg should be a logistic regression" in result.output
    assert "(logreg_check)" in result.output
