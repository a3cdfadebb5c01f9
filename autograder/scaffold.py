"""A new assignment's source notebook that already follows the notebook contract (``autograder new NAME``).

The instructor first describes the assignment in ``course_config.py`` (its models, dataset, checks,
parameters and thresholds); ``autograder new NAME`` then writes ``source/NAME/NAME.ipynb``: an
introduction, the ``parameters`` cell with the assignment's parameters, the ``imports`` cell, loading the
data and the validation split as a shipped notebook on the same dataset does them (for a dataset described
in the configuration that none loads, from its description), a model to build and
train in solution blocks, and the cell that saves each model file. ``autograder release NAME`` then
adds the generated cells and builds the student's version with nbgrader.
"""

from __future__ import annotations

from pathlib import Path

import course_config
from autograder.notebook import (
    HELPER_CELL_BEFORE,
    PARAMETERS_TAG,
    SOLUTION_BEGIN,
    SOLUTION_END,
    assigns,
    grade_id,
    locked,
)


def _cell(kind: str, cell_id: str, source: str, answer: bool = False, tags: tuple[str, ...] = ()):
    """A read-only nbgrader cell (:func:`autograder.notebook.locked`), or with ``answer`` one the student writes in."""
    import nbformat

    cell = locked((nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(source), cell_id)
    if answer:
        cell.metadata["nbgrader"].update(locked=False, solution=True)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _template(assignment: course_config.Assignment, course_dir: Path):
    """A shipped source notebook on the same dataset, where the data cells are taken from (None for a described
    dataset that none loads: its data cells are written from its description)."""
    import nbformat

    for other in course_config.ASSIGNMENTS.values():
        path = course_dir / "source" / other.name / other.notebook
        if other.name != assignment.name and other.dataset == assignment.dataset and path.is_file():
            return nbformat.read(path, as_version=4)
    if assignment.described is not None:
        return None
    known = sorted({a.dataset for a in course_config.ASSIGNMENTS.values()} - {assignment.dataset})
    raise ValueError(f"{assignment.name}: no shipped notebook loads dataset {assignment.dataset!r} to start from "
                     f"(shipped: {', '.join(known)})")


def _described_data_cells(assignment: course_config.Assignment) -> list:
    """Loading a described dataset, scaling it as the grader does and holding out the validation split that the
    check before hand-in reads (``course_data.dataset_validation``): the same rows, the same scale."""
    d, (x_val, y_val) = assignment.described, assignment.validation
    scale = "" if d.scale == 1 else f" / {d.scale!r}"
    return [
        _cell("code", HELPER_CELL_BEFORE, "import numpy as np\nimport keras\nfrom course_data import load_dataset\n\n"
                                          "keras.utils.set_random_seed(SEED)"),
        _cell("markdown", "data_md", f"## The data: {d.title}\n\nWhat one {d.noun[:-1] if d.noun.endswith('s') else 'row'} "
                                     "is, and what is to be predicted. The test labels stay with the grader: "
                                     "`y_test` is `None`."),
        _cell("code", "load_data", f"(x_train, y_train), (x_test, y_test) = load_dataset({d.name!r})\n"
                                   f"x_train = x_train.astype(\"float32\"){scale}\n"
                                   f"x_test = x_test.astype(\"float32\"){scale}\n"
                                   "print(\"training:\", x_train.shape, \"  test:\", x_test.shape)"),
        _cell("markdown", "validation_md", f"## A validation set\n\nThe last {d.validation_share:.0%} of the training "
                                           f"{d.noun} are held out to tune on; the grader's check before hand-in "
                                           "scores the saved model on the same ones."),
        _cell("code", "validation_split", f"n_val = max(1, round(len(x_train) * {d.validation_share!r}))\n"
                                          f"{x_val}, {y_val} = x_train[-n_val:], y_train[-n_val:]\n"
                                          "x_fit, y_fit = x_train[:-n_val], y_train[:-n_val]\n"
                                          f"print(\"fit:\", x_fit.shape, \"  validation:\", {x_val}.shape)"),
    ]


def _copy(cell):
    """A template's cell for the new notebook: its source and grade_id, an answer cell still an answer cell."""
    answer = bool(cell.metadata.get("nbgrader", {}).get("solution"))
    return _cell(cell.cell_type, grade_id(cell) or cell.get("id", "cell"), cell.source, answer=answer,
                 tags=tuple(cell.metadata.get("tags") or ()))


def _data_cells(assignment: course_config.Assignment, template) -> list:
    """The template's cells from its imports to the cell that sets the validation data (its data preparation,
    answers included: they may be the new assignment's exercise too)."""
    cells = template.cells
    start = next(i for i, c in enumerate(cells) if grade_id(c) == HELPER_CELL_BEFORE)
    x_val = assignment.validation[0]
    end = next((i for i in range(start, len(cells)) if cells[i].cell_type == "code" and assigns(cells[i].source, x_val)),
               None)
    if end is None:
        raise ValueError(f"{assignment.name}: the notebook to start from never sets {x_val}")
    return [_copy(cell) for cell in cells[start:end + 1]]


def _parameters_cell(assignment: course_config.Assignment, template):
    """The template's parameters cell (or a new one), with each of the assignment's parameters it does not set
    added (full values)."""
    if template is None:
        cell_id, source = "parameters", ("# Parameters. The grader may override these when it re-runs your notebook "
                                         "on a CPU;\n# your training code must use them.\nSEED = 0")
    else:
        cell = next(c for c in template.cells if PARAMETERS_TAG in (c.metadata.get("tags") or []))
        cell_id, source = grade_id(cell) or "parameters", cell.source.rstrip("\n")
    values: dict[str, object] = {}
    for profile in ("full", *assignment.parameters):
        for name, value in assignment.parameters.get(profile, {}).items():
            values.setdefault(name, value)
    source += "".join(f"\n{name} = {value!r}" for name, value in values.items() if not assigns(source, name))
    return _cell("code", cell_id, source, tags=(PARAMETERS_TAG,))


def notebook(assignment: course_config.Assignment, course_dir: Path = course_config.COURSE_DIR):
    """The new assignment's source notebook (see the module docstring)."""
    import nbformat

    template = _template(assignment, course_dir)
    x_val, y_val = assignment.validation
    saves = "\n".join(f'model.save("{spec.file}")' if spec.file.endswith((".keras", ".h5"))
                      else f'# save {spec.name} here as "{spec.file}"' for spec in assignment.models)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.cells = [
        _cell("markdown", "intro", f"# {assignment.title}\n\nWhat this notebook teaches, in a few sentences.\n\n"
                                   "**Goal: what earns full credit, in the student's words.**"),
        _parameters_cell(assignment, template),
        _cell("markdown", "setup_md", "## Setup\n\nThe libraries, and the course's data loaders."),
        *(_data_cells(assignment, template) if template is not None else _described_data_cells(assignment)),
        _cell("markdown", "model_md", "## The model\n\nThe idea of this lecture, and what the student builds."),
        _cell("code", "build_model", f"def build_model():\n    {SOLUTION_BEGIN}\n    raise NotImplementedError\n"
                                     f"    {SOLUTION_END}\n\n\nmodel = build_model()\nmodel.summary()", answer=True),
        _cell("markdown", "train_md", "## Training\n\nHow to train it, and how to read the curves."),
        _cell("code", "train", f"{SOLUTION_BEGIN}\nraise NotImplementedError  # model.compile(...), "
                               f"model.fit(..., epochs=EPOCHS)\n{SOLUTION_END}\n"
                               f"print(model.evaluate({x_val}, {y_val}, verbose=0))", answer=True),
        _cell("markdown", "save_md", "## Save the model\n\nThe grader grades the file this cell writes."),
        _cell("code", "save_model", saves),
    ]
    return nb


def new(name: str, course_dir: Path = course_config.COURSE_DIR, *, force: bool = False) -> Path:
    """Write ``source/<name>/<notebook>`` for the assignment ``name`` of course_config; its path."""
    import nbformat

    assignment = course_config.assignment(name)
    path = course_dir / "source" / name / assignment.notebook
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; give --force to overwrite it")
    nb = notebook(assignment, course_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
