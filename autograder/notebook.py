"""The course notebook's vocabulary: nbgrader's cell metadata and the cells the kit writes into a notebook.

One home for what release, re-execution, nbgrader's buttons and the gradebook all need to know of a
notebook: a cell's ``grade_id``, how a read-only cell is marked, which cells the kit generates (the
helper cell, the check before hand-in, one graded ``check_<id>`` cell per check) and how a graded
cell carries a score that nbgrader reads (:func:`set_check_output`).
"""

from __future__ import annotations

# The generated cells, by grade_id.
HELPER_CELL_ID = "fetch_helpers"  # the course's helper code, carried inside the notebook
HELPER_CELL_BEFORE = "imports"  # the helper cell goes right before this cell
CHECK_MD_ID = "hand_in_check_md"
CHECK_SAVED_ID = "hand_in_check"
GRADING_MD_ID = "grading_md"
CHECK_CELL_PREFIX = "check_"
# The first line of every generated cell that runs under nbgrader's Validate (the rest are skipped there).
VALIDATE_MARK = "# Course check"
# The tag of the cell a re-execution inserts after the "parameters" cell (papermill's convention) with the profile's
# values; cells are numbered for the student without it.
INJECTED_TAG = "injected-parameters"
# Where a graded notebook carries the kit's grading record (nbgrader autograde, autograder grade --gradebook).
RECORD_KEY = "autograder"


def grade_id(cell) -> str | None:
    """The nbgrader ``grade_id`` of a cell, or None (also for malformed metadata from a student's notebook)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    value = meta.get("grade_id") if isinstance(meta, dict) else None
    return value if isinstance(value, str) else None


def check_cell_id(check_id: str) -> str:
    """The grade_id of the graded cell that stands for the check ``check_id`` (and its gradebook cell)."""
    return f"{CHECK_CELL_PREFIX}{check_id}"


def is_generated(cell) -> bool:
    """A cell the kit writes from course_config (replaced whenever the notebook is synced)."""
    gid = grade_id(cell) or ""
    return gid in (HELPER_CELL_ID, GRADING_MD_ID, CHECK_MD_ID, CHECK_SAVED_ID) or gid.startswith(CHECK_CELL_PREFIX)


def is_check_cell(cell) -> bool:
    """The check before hand-in and the graded cells after it: they read the saved files, train nothing."""
    gid = grade_id(cell) or ""
    return gid in (GRADING_MD_ID, CHECK_MD_ID, CHECK_SAVED_ID) or gid.startswith(CHECK_CELL_PREFIX)


def locked(cell, cell_id: str, points: float | None = None):
    """``cell`` as a read-only nbgrader cell ``cell_id``; a graded one when it carries ``points``."""
    meta = {"grade": points is not None, "grade_id": cell_id, "locked": True}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = {**meta, "schema_version": 3, "solution": False, "task": False}
    cell["id"] = cell_id
    return cell


def check_output(check) -> str:
    """What a ``check_<id>`` cell shows in a graded notebook: the score and the grader's message."""
    return f"{check.score:g} / {check.points:g} points: {check.output}\n"


def set_check_output(cell, check) -> None:
    """Give a graded ``check_<id>`` cell the kit's verdict as nbgrader reads a score: the message on stdout
    and the score as the cell's value (nbgrader's partial credit: a number as the last output)."""
    import nbformat

    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=check_output(check)),
        nbformat.v4.new_output("execute_result", data={"text/plain": repr(float(check.score))}, execution_count=None),
    ]


def annotate(nb, result, release_nb=None):
    """``nb`` as graded: each ``check_<id>`` cell shows the kit's score and message, the notebook's metadata
    carries the grading record (for the feedback page). Graded cells the student deleted are put back from
    ``release_nb``, as nbgrader autograde does."""
    import copy

    by_cell = {check_cell_id(c.id): c for c in result.checks}
    present = set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if cell.cell_type == "code" and gid in by_cell:
            set_check_output(cell, by_cell[gid])
            present.add(gid)
    missing = [gid for gid in by_cell if gid not in present]
    if missing and release_nb is not None:
        for cell in release_nb.cells:
            if grade_id(cell) in missing:
                cell = copy.deepcopy(cell)
                set_check_output(cell, by_cell[grade_id(cell)])
                nb.cells.append(cell)
    nb.metadata[RECORD_KEY] = {"record": result.to_dict()}
    return nb


def record_of(nb) -> dict | None:
    """The grading record a graded notebook carries, or None."""
    meta = nb.get("metadata", {}).get(RECORD_KEY)
    record = meta.get("record") if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else None
