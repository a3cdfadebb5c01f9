"""Build the student release and the solutions from ``source/`` with real nbgrader.

``autograder release`` writes the cells that course_config decides into each source notebook (the
helper cell that carries the course's helper code, the check before hand-in, one nbgrader graded cell
per check, see :func:`sync_grading_cells`), then runs ``nbgrader generate_assignment`` (-> ``release/``)
and ``nbgrader generate_solution`` (-> ``solutions/``) in a scratch course folder configured as the
course's own ``nbgrader_config.py``, and puts the results in place. nbgrader's own Generate button gives
the same release: the course's configuration syncs those cells first (:mod:`autograder.nbgrader_plugins`).
A release is one notebook per assignment: it runs anywhere (Colab, JupyterHub, a laptop, offline)
without any other file. Both outputs are committed; :func:`drift` tells whether they still match
``source/``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tempfile
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import course_config
from autograder.notebook import (  # noqa: F401  (the cell ids are part of release's vocabulary)
    CHECK_CELL_PREFIX,
    CHECK_MD_ID,
    CHECK_SAVED_ID,
    GRADING_MD_ID,
    HELPER_CELL_BEFORE,
    HELPER_CELL_ID,
    VALIDATE_MARK,
    contract_problems,
    grade_id,
    is_generated,
    locked,
    run_nbgrader,
)

if TYPE_CHECKING:
    from nbformat import NotebookNode

HELPERS_DIR = Path(__file__).resolve().parent
OUTPUTS = {"release": "generate_assignment", "solutions": "generate_solution"}
IGNORED = {".ipynb_checkpoints", "__pycache__", ".nbgrader.log", "gradebook.db"}
# The course's nbgrader configuration (the file at the top of the course): a scratch course gets a copy.
NBGRADER_CONFIG_FILE = course_config.COURSE_DIR / "nbgrader_config.py"


class ReleaseError(RuntimeError):
    """nbgrader refused the source notebook; the message carries nbgrader's own words."""


def helper_files(assignment: course_config.Assignment, helpers_dir: Path = HELPERS_DIR) -> list[str]:
    """The helper files of ``assignment``, relative to autograder/: a package stands for its ``.py`` files."""
    files = []
    for helper in assignment.helpers:
        path = helpers_dir / helper
        if path.is_dir():
            files += sorted(str(p.relative_to(helpers_dir)) for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        else:
            files.append(helper)
    return files


def helpers_zip(assignment: course_config.Assignment, helpers_dir: Path = HELPERS_DIR) -> bytes:
    """The assignment's helper files as a zip archive that Python imports from (the same bytes on every build)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        files = {name: (helpers_dir / name).read_bytes() for name in helper_files(assignment, helpers_dir)}
        if assignment.described is not None:  # what course_data.load_dataset(NAME) reads in the notebook
            files["course_data/datasets.json"] = json.dumps(
                {assignment.dataset: assignment.described.as_facts()}, indent=1, sort_keys=True).encode()
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def runnable_solution(assignment: course_config.Assignment, dst: Path,
                      course_dir: Path = course_config.COURSE_DIR) -> Path:
    """A copy of ``solutions/<assignment>/`` in ``dst`` (a new folder), as a student's folder has it: the
    notebook alone runs anywhere (its helper cell carries the helpers)."""
    shutil.copytree(course_dir / "solutions" / assignment.name, dst, ignore=shutil.ignore_patterns(*IGNORED))
    return dst


def check_cell_id(check: course_config.Check) -> str:
    """The nbgrader grade_id of the graded cell that stands for ``check`` (and its gradebook cell)."""
    from autograder.notebook import check_cell_id as cell_id

    return cell_id(check.id)


def _points(points: float) -> int | float:
    return int(points) if float(points).is_integer() else float(points)


def _points_text(points: float) -> str:
    return f"{_points(points)} point{'' if points == 1 else 's'}"


def _file_list(files: list[str]) -> str:
    quoted = [f"`{f}`" for f in files]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def threshold_text(assignment: course_config.Assignment, profile: str = course_config.DEFAULT_PROFILE) -> str:
    """The thresholds of the assignment's metric checks for full and partial credit, as a Markdown list."""
    lines = [f"Thresholds for the saved {'model' if len(assignment.models) == 1 else 'models'} (the '{profile}' profile):"]
    from autograder.course_check import tier_text

    for check_id, threshold in assignment.thresholds.get(profile, {}).items():
        check = assignment.check(check_id)
        tiers = tier_text([[t.minimum, t.fraction] for t in threshold.best_first()], threshold.lower_is_better)
        lines.append(f"- `{check.id}` ({_points_text(check.points)}, {check.title}): {tiers}; below that, no points.")
    return lines[0] + "\n\n" + "\n".join(lines[1:])


def grading_cells(assignment: course_config.Assignment) -> list[NotebookNode]:
    """The notebook's grading section: a locked markdown cell, then one locked graded cell per check.

    Each graded cell carries the check's points from course_config, so that nbgrader's gradebook
    (and ``nbgrader export``, formgrader) knows every check and the assignment's total. Run in the
    notebook (or by nbgrader's Validate), a cell gives the check before hand-in's verdict on the saved
    files and fails with the grader's message where they fail it. ``nbgrader autograde`` never runs
    them: the course's configuration has the kit grade the submission and write each score into its
    cell (:mod:`autograder.nbgrader_plugins`). They hold no hidden tests, so the released cells are the
    source's, checksums included.
    """
    import nbformat

    files = [spec.file for spec in assignment.models]
    one = len(files) == 1
    md = "## How this notebook is graded\n\n" + textwrap.fill(
        f"The course autograder grades the {'model' if one else 'models'} you saved above, {_file_list(files)}, "
        f"outside this notebook: it reads {'the' if one else 'each'} model's architecture from the file and "
        f"measures how well {'it does' if one else 'each does'} on test data that this notebook never sees. "
        f"Each cell below names one of its checks and the points it is worth "
        f"({_points_text(assignment.max_score)} in all) and shows what the check before hand-in says of it; "
        f"make sure that the save cell above ran after your final training.",
        width=100,
    )
    md += "\n\n" + threshold_text(assignment)
    cells = [locked(nbformat.v4.new_markdown_cell(md), GRADING_MD_ID)]
    for check in assignment.checks:
        source = (
            f"{VALIDATE_MARK} `{check.id}` ({_points_text(check.points)}): {check.title}.\n"
            f"# The grader scores it from {assignment.model_of(check.id).file}; this cell shows the check "
            "before hand-in's verdict.\n"
            f"import course_check\ncourse_check.verdict({check.id!r})"
        )
        cells.append(locked(nbformat.v4.new_code_cell(source), check_cell_id(check), points=_points(check.points)))
    return cells


def check_saved_cells(assignment: course_config.Assignment) -> list[NotebookNode]:
    """The section right after the save cell: the student's check of the saved files, run as the grader reads them."""
    import pprint

    import nbformat

    from autograder.course_check import facts_of
    from autograder.datasets.tasks import task_class

    files = [spec.file for spec in assignment.models]
    md = "## Check before you hand in\n\n" + textwrap.fill(
        f"This cell reads {_file_list(files)} exactly as the grader will, with its own reader and engine "
        f"(unpacked by the helper cell at the top), runs its architecture checks, and "
        f"compares the grader's predictions with your model's own on the validation "
        f"{task_class(assignment).noun}. It prints each check as passed (✓) or why not "
        f"(✗), and your validation figure beside the thresholds for full and partial credit. It needs no test "
        f"labels and no network. If a check fails, fix the model, train it again and re-run the save cell above "
        f"before this one. nbgrader's Validate button runs only this cell and the ones below it: it checks the "
        f"files you saved, without training anything or changing them.",
        width=100,
    )
    facts = pprint.pformat(facts_of(assignment, course_config.DEFAULT_PROFILE), width=100, sort_dicts=False)
    source = (
        f"{VALIDATE_MARK} before hand-in: the saved files, read as the grader reads them.\n"
        "import course_check\n\n"
        f"# Written by `autograder release` from course_config.py: the checks, their points and the\n"
        f"# thresholds of the '{course_config.DEFAULT_PROFILE}' profile, with which saved models are graded.\n"
        f"FACTS = {facts}\n"
        "course_check.check_before_hand_in(FACTS, globals());"
    )
    return [locked(nbformat.v4.new_markdown_cell(md), CHECK_MD_ID),
            locked(nbformat.v4.new_code_cell(source), CHECK_SAVED_ID)]


_HELPER_CODE = """\
#@title Course helpers: run this cell (it unpacks the course's code; nothing to read or change here)
# The course's helper code travels inside this cell: the data loaders (course_data), the check before
# hand-in (course_check) and the grader's own NumPy engine (keras_numpy). Running the cell unpacks them
# into a temporary folder and imports them from there: nothing to upload, no network needed.
import base64, hashlib, importlib, os, sys, tempfile


def _course_helpers(packed, sha256):
    data = base64.b64decode(packed)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError("the helper code in this cell is not the code released with this notebook (was the "
                           "cell changed?): download the notebook again")
    path = os.path.join(tempfile.mkdtemp(prefix="course-helpers-"), f"helpers-{{sha256[:12]}}.zip")
    with open(path, "wb") as f:
        f.write(data)
    sys.path[:] = [path] + [p for p in sys.path if "course-helpers-" not in p]
    for name in [m for m in sys.modules if m.split(".")[0] in {modules!r}]:
        del sys.modules[name]
    importlib.invalidate_caches()
    if os.environ.get("NBGRADER_EXECUTION") == "validate" and "get_ipython" in globals():
        # nbgrader's Validate: only the cells that check the saved files run (they start with
        # {mark!r}); nothing is trained and no model file is written or changed.
        get_ipython().input_transformers_post.append(
            lambda lines: lines if lines and lines[0].startswith({mark!r}) else ["pass\\n"])
    print(f"course helpers {{sha256[:12]}} ready: {names}")


_course_helpers(\"\"\"
{packed}
\"\"\", {sha256!r})"""


def helper_cell_source(assignment: course_config.Assignment, helpers_dir: Path = HELPERS_DIR) -> str:
    """The code of the notebook cell that carries the assignment's helpers (see :func:`helpers_zip`)."""
    data = helpers_zip(assignment, helpers_dir)
    packed = base64.b64encode(data).decode("ascii")
    modules = sorted({Path(h).parts[0].removesuffix(".py") for h in helper_files(assignment, helpers_dir)})
    return _HELPER_CODE.format(packed="\n".join(packed[i:i + 100] for i in range(0, len(packed), 100)),
                               sha256=hashlib.sha256(data).hexdigest(), modules=tuple(modules),
                               names=", ".join(modules), mark=VALIDATE_MARK)


def helper_cell(assignment: course_config.Assignment) -> NotebookNode:
    """The locked helper cell, shown collapsed (JupyterLab) or as a form (Colab)."""
    import nbformat

    cell = nbformat.v4.new_code_cell(helper_cell_source(assignment))
    cell.metadata["jupyter"] = {"source_hidden": True}
    cell.metadata["cellView"] = "form"
    return locked(cell, HELPER_CELL_ID)


def save_cell_index(nb, assignment: course_config.Assignment) -> int:
    """Index of the (last) code cell that saves every model file of ``assignment``."""
    for i in range(len(nb.cells) - 1, -1, -1):
        cell = nb.cells[i]
        if cell.cell_type == "code" and all(f'"{spec.file}"' in cell.source or f"'{spec.file}'" in cell.source
                                            for spec in assignment.models):
            return i
    files = ", ".join(spec.file for spec in assignment.models)
    raise ReleaseError(f"{assignment.notebook}: no code cell saves {files}; the grading section goes after it")


def unchecked(assignment: course_config.Assignment) -> list[str]:
    """The checks nothing would grade: for an assignment without a check module of its own, a check is graded
    only if it is an architecture check of autograder.model_checks or has thresholds in every profile."""
    from autograder.checks import CHECKS_DIR, FROM_CONFIG, check_module
    from autograder.model_checks import ARCHITECTURE

    if check_module(assignment.name) != FROM_CONFIG:
        return []
    problems = []
    for check in assignment.checks:
        missing = [p for p in course_config.PROFILES if check.id not in assignment.thresholds.get(p, {})]
        if check.id not in ARCHITECTURE and missing:
            problems.append(f"check {check.id!r} is neither an architecture check ({', '.join(sorted(ARCHITECTURE))}) nor "
                            f"has thresholds in every profile (none in {', '.join(missing)}): give it thresholds, or "
                            f"write its test in {CHECKS_DIR.relative_to(course_config.COURSE_DIR) / ('test_' + assignment.name + '.py')}")
    return problems


def with_grading_cells(nb, assignment: course_config.Assignment):
    """A copy of ``nb`` with the cells course_config generates: the grading section right after the save
    cell and, for an assignment with helper files, the helper cell (which carries them) right before the imports."""
    import copy

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not is_generated(c)]
    problems = contract_problems(nb, assignment) + unchecked(assignment)
    if problems:
        raise ReleaseError(f"source/{assignment.name}/{assignment.notebook} does not follow the notebook contract "
                           "(docs/notebook_contract.md):\n  - " + "\n  - ".join(problems))
    at = save_cell_index(nb, assignment) + 1
    nb.cells[at:at] = check_saved_cells(assignment) + grading_cells(assignment)
    if assignment.helpers:
        at = next((i for i, c in enumerate(nb.cells) if grade_id(c) == HELPER_CELL_BEFORE), None)
        if at is None:
            raise ReleaseError(f"{assignment.notebook}: no cell with grade_id {HELPER_CELL_BEFORE!r}; the cell that "
                               "carries the helper files goes right before it")
        nb.cells.insert(at, helper_cell(assignment))
    return nb


def sync_grading_cells(assignment: course_config.Assignment, course_dir: Path = course_config.COURSE_DIR,
                       *, write: bool = True) -> bool:
    """Bring the generated cells of ``source/<a>/<a>.ipynb`` in line with course_config and autograder/.

    Existing generated cells are replaced (so changed points, titles, checks or helpers reach the notebook).
    Returns whether the notebook was out of sync (and, with ``write``, rewritten).
    """
    import nbformat

    path = course_dir / "source" / assignment.name / assignment.notebook
    if not path.is_file():
        raise ReleaseError(f"{path} does not exist")
    nb = nbformat.read(path, as_version=4)
    synced = with_grading_cells(nb, assignment)
    if nbformat.writes(synced) == nbformat.writes(nb):
        return False
    if write:
        nbformat.write(synced, path)
    return True


def build(assignment: course_config.Assignment, course_dir: Path, target_root: Path) -> None:
    """Generate ``target_root/release/<a>`` and ``target_root/solutions/<a>`` from ``course_dir/source/<a>``."""
    source = course_dir / "source" / assignment.name
    if not (source / assignment.notebook).is_file():
        raise ReleaseError(f"{source / assignment.notebook} does not exist")
    shutil.copytree(source, target_root / "source" / assignment.name, ignore=shutil.ignore_patterns(*IGNORED))
    shutil.copyfile(NBGRADER_CONFIG_FILE, target_root / "nbgrader_config.py")
    for command in OUTPUTS.values():
        run_nbgrader(command, assignment.name, target_root, error=ReleaseError)


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): p
        for p in folder.rglob("*")
        if p.is_file() and not (set(p.relative_to(folder).parts) & IGNORED)
    }


def release(names: list[str] | None = None, course_dir: Path = course_config.COURSE_DIR) -> list[str]:
    """Regenerate release/ and solutions/ for the named (default: all) assignments; list what was written.

    The assignments are built side by side, one nbgrader course of their own each, as many at a time as
    there are cores (each nbgrader command is a Python process of its own, mostly its start: 4.5 s).
    """
    assignments = [course_config.assignment(name) for name in names or list(course_config.ASSIGNMENTS)]
    for assignment in assignments:  # the source notebooks first, one after the other
        sync_grading_cells(assignment, course_dir)
    written = []
    with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
        roots = {a.name: Path(tmp) / a.name for a in assignments}
        with ThreadPoolExecutor(max_workers=min(len(assignments), os.cpu_count() or 1) or 1) as pool:
            for done in [pool.submit(build, a, course_dir, roots[a.name]) for a in assignments]:
                done.result()  # the first failure, with nbgrader's words
        for assignment in assignments:
            for out in OUTPUTS:
                dst = course_dir / out / assignment.name
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(roots[assignment.name] / out / assignment.name, dst,
                                ignore=shutil.ignore_patterns(*IGNORED))
                written.append(str(dst.relative_to(course_dir)))
    return written


def drift(name: str, course_dir: Path = course_config.COURSE_DIR) -> list[str]:
    """Differences between the committed release/solutions of ``name`` and a fresh build; [] if in sync."""
    assignment = course_config.assignment(name)
    problems = []
    if sync_grading_cells(assignment, course_dir, write=False):
        problems.append(f"source/{name}/{assignment.notebook}: its generated cells (helper cell, grading section) "
                        "are out of sync with course_config and autograder/")
    with tempfile.TemporaryDirectory(prefix="autograder-drift-") as tmp:
        build(assignment, course_dir, Path(tmp))
        for out in OUTPUTS:
            fresh, committed = _files(Path(tmp) / out / name), _files(course_dir / out / name)
            for rel in sorted(set(fresh) | set(committed)):
                if rel not in committed:
                    problems.append(f"{out}/{name}/{rel} is missing")
                elif rel not in fresh:
                    problems.append(f"{out}/{name}/{rel} is not produced from source/")
                elif fresh[rel].read_bytes() != committed[rel].read_bytes():
                    problems.append(f"{out}/{name}/{rel} differs from what source/ generates")
    return problems
