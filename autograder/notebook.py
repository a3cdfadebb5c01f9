"""The course notebook's vocabulary: nbgrader's cell metadata and the cells the kit writes into a notebook.

One home for what release, re-execution, nbgrader's buttons and the gradebook all need to know of a
notebook: a cell's ``grade_id``, how a read-only cell is marked, which cells the kit generates (the
helper cell, the check before hand-in, one graded ``check_<id>`` cell per check), how a graded
cell carries a score that nbgrader reads (:func:`set_check_output`), the parameters cell a re-execution
injects after, the contract a source notebook follows, and running nbgrader (:func:`run_nbgrader`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


# The notebook contract: what a source notebook must contain for the kit (docs/notebook_contract.md).
PARAMETERS_TAG = "parameters"  # papermill's tag: the grader's values are injected right after this cell
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"


def assigns(source: str, name: str) -> bool:
    """Whether ``source`` assigns ``name`` at the start of a line (``x = ...``, ``x, y = ...``, ``x: int = ...``)."""
    import re

    target = r"[A-Za-z_][\w.\[\]'\"]*"
    return re.search(rf"^[ \t]*(?:{target}[ \t]*,[ \t]*)*{re.escape(name)}[ \t]*(?:,[ \t]*{target}[ \t]*)*(?::[^=\n]+)?="
                     r"(?!=)", source, re.M) is not None


def contract_problems(nb, assignment) -> list[str]:
    """What a source notebook lacks of the contract the kit relies on, each with what to add (none: it follows it)."""
    code = [c for c in nb.cells if c.get("cell_type") == "code" and not is_generated(c)]  # the instructor's cells
    problems = []
    ids: dict[str, int] = {}
    for cell in nb.cells:
        if (gid := grade_id(cell)) is not None:
            ids[gid] = ids.get(gid, 0) + 1
    twice = sorted(gid for gid, n in ids.items() if n > 1)
    if twice:
        problems.append(f"grade_id {', '.join(twice)} is given to more than one cell: nbgrader needs each cell's "
                        "grade_id to be unique")
    if not any(grade_id(c) == HELPER_CELL_BEFORE for c in code):
        problems.append(f"no code cell has grade_id {HELPER_CELL_BEFORE!r}: give it to the cell of imports (the course's "
                        "helper cell, which carries the data loaders and the check before hand-in, goes right before it)")
    tagged = [c for c in code if PARAMETERS_TAG in (c.get("metadata", {}).get("tags") or [])]
    names = sorted({n for values in assignment.parameters.values() for n in values})
    if not tagged:
        problems.append(f"no code cell is tagged {PARAMETERS_TAG!r}: tag the cell that sets "
                        f"{', '.join(names) or 'the parameters'} (the grader's values for a re-run go right after it)")
    else:
        unset = [n for n in names if not any(assigns(c.source, n) for c in tagged)]
        if unset:
            problems.append(f"the cell tagged {PARAMETERS_TAG!r} does not set {', '.join(unset)}: course_config "
                            "gives the grader's values for them, which would then change nothing")
    for spec in assignment.models:
        if not any(f'"{spec.file}"' in c.source or f"'{spec.file}'" in c.source for c in code):
            problems.append(f"no code cell saves {spec.file} (its name written out, as in "
                            f'model.save("{spec.file}")): the grader grades that file, and the check before hand-in '
                            "goes right after the cell that saves it")
    unset = [name for name in assignment.validation if not any(assigns(c.source, name) for c in code)]
    if unset:
        problems.append(f"no code cell sets {' or '.join(unset)}: the check before hand-in scores the saved model on "
                        f"{' and '.join(assignment.validation)}, the notebook's validation data")
    solutions = [c for c in code if SOLUTION_BEGIN in c.source]
    if not solutions:
        problems.append(f"no code cell has a {SOLUTION_BEGIN} ... {SOLUTION_END} block: nbgrader makes the student's "
                        "version by removing those blocks")
    for cell in solutions:
        if cell.source.count(SOLUTION_BEGIN) != cell.source.count(SOLUTION_END):
            problems.append(f"cell {grade_id(cell) or cell.get('id', '?')}: {SOLUTION_BEGIN} and {SOLUTION_END} "
                            "do not pair up")
    return problems


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader in a course folder without the course's configuration: this Python's
    scripts first on PATH (nbgrader runs ``alembic`` by name)."""
    return {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def run_nbgrader(command: str, assignment: str, root: Path, *extra: str, error: type[Exception] = RuntimeError) -> None:
    """Run one nbgrader command (``generate_assignment``, ``generate_solution``) in the scratch course ``root``
    (its gradebook lives there too, unless ``extra`` names another); ``error`` with nbgrader's own words if it fails."""
    argv = [
        sys.executable, "-m", "nbgrader", command, assignment, "--force",
        f"--CourseDirectory.root={root}", "--log-level=WARN", *extra,
    ]
    res = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise error(f"nbgrader {command} {assignment} failed:\n{res.stdout}{res.stderr}")
