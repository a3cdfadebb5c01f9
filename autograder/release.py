"""Build the student release and the solutions from ``source/`` with real nbgrader.

``autograder release`` copies the course's shared helpers (e.g. ``course_data.py``) into each
``source/<assignment>/``, writes the source notebook's grading section from ``course_config`` (one
nbgrader graded cell per check, see :func:`sync_grading_cells`), then runs ``nbgrader
generate_assignment`` (-> ``release/``) and ``nbgrader generate_solution`` (-> ``solutions/``) in a
scratch course folder and puts the results in place. Both outputs are committed; :func:`drift` tells whether they still match ``source/``.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import course_config
from autograder.grading.execute import grade_id

if TYPE_CHECKING:
    from nbformat import NotebookNode

HELPERS_DIR = Path(__file__).resolve().parent
OUTPUTS = {"release": "generate_assignment", "solutions": "generate_solution"}
IGNORED = {".ipynb_checkpoints", "__pycache__", ".nbgrader.log", "gradebook.db"}
# nbgrader's configuration for the scratch course. Solutions are not executed: outputs would make
# them differ from run to run (and training takes minutes); students run them themselves.
NBGRADER_CONFIG = """\
from nbgrader.preprocessors import ClearHiddenTests, ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells

c = get_config()
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.solution_directory = "solutions"
c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearHiddenTests, ClearMarkScheme]
"""
# Solutions drop the hidden tests too: the grading section's hidden tests always fail (see
# sync_grading_cells), and the solution notebook must run top to bottom (demo, calibration).

# The grading section at the end of every source notebook, generated from course_config.
GRADING_MD_ID = "grading_md"
CHECK_CELL_PREFIX = "check_"


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


def sync_helpers(assignment: course_config.Assignment, course_dir: Path = course_config.COURSE_DIR) -> list[Path]:
    """Copy the shared helper files into ``source/<assignment>/``, so the instructor's notebook runs there;
    return the files that changed. These copies (and those in ``solutions/``) are git-ignored: only the
    ``release/`` copies are product, and :func:`build` takes the helpers from ``autograder/`` itself."""
    changed = []
    wanted = set(helper_files(assignment))
    for helper in assignment.helpers:  # files of a helper package that no longer exist
        folder = course_dir / "source" / assignment.name / helper
        if folder.is_dir():
            for old in folder.rglob("*.py"):
                if str(old.relative_to(course_dir / "source" / assignment.name)) not in wanted:
                    old.unlink()
                    changed.append(old)
    for helper in sorted(wanted):
        src, dst = HELPERS_DIR / helper, course_dir / "source" / assignment.name / helper
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            changed.append(dst)
    return changed


def runnable_solution(assignment: course_config.Assignment, dst: Path,
                      course_dir: Path = course_config.COURSE_DIR) -> Path:
    """A copy of ``solutions/<assignment>/`` in ``dst`` (a new folder) with the released helpers beside the
    notebook, as a student's folder has them: a solution that runs anywhere, on a fresh clone too."""
    shutil.copytree(course_dir / "solutions" / assignment.name, dst, ignore=shutil.ignore_patterns(*IGNORED))
    for helper in helper_files(assignment):
        (dst / helper).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(course_dir / "release" / assignment.name / helper, dst / helper)
    return dst


def check_cell_id(check: course_config.Check) -> str:
    """The nbgrader grade_id of the graded cell that stands for ``check`` (and its gradebook cell)."""
    return f"{CHECK_CELL_PREFIX}{check.id}"


def _points(points: float) -> int | float:
    return int(points) if float(points).is_integer() else float(points)


def _points_text(points: float) -> str:
    return f"{_points(points)} point{'' if points == 1 else 's'}"


def _file_list(files: list[str]) -> str:
    quoted = [f"`{f}`" for f in files]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _locked(cell: NotebookNode, cell_id: str, points: float | None = None) -> NotebookNode:
    """``cell`` as a read-only nbgrader cell ``cell_id``; a graded one when it carries ``points``."""
    meta = {"grade": points is not None, "grade_id": cell_id, "locked": True}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = {**meta, "schema_version": 3, "solution": False, "task": False}
    cell["id"] = cell_id
    return cell


def threshold_text(assignment: course_config.Assignment, profile: str = course_config.DEFAULT_PROFILE) -> str:
    """The thresholds of the assignment's metric checks for full and partial credit, as a Markdown list."""
    lines = [f"Thresholds for the saved {'model' if len(assignment.models) == 1 else 'models'} (the '{profile}' profile):"]
    from autograder.course_check import tier_text

    for check_id, threshold in assignment.thresholds.get(profile, {}).items():
        check = assignment.check(check_id)
        tiers = tier_text([[t.minimum, t.fraction] for t in sorted(threshold.tiers, key=lambda t: -t.minimum)])
        lines.append(f"- `{check.id}` ({_points_text(check.points)}, {check.title}): {tiers}; below that, no points.")
    return lines[0] + "\n\n" + "\n".join(lines[1:])


def grading_cells(assignment: course_config.Assignment) -> list[NotebookNode]:
    """The notebook's grading section: a locked markdown cell, then one locked graded cell per check.

    Each graded cell carries the check's points from course_config, so that nbgrader's gradebook
    (and ``nbgrader export``, formgrader) knows every check and the assignment's total. Its hidden
    test always fails: the checks are scored by the course autograder from the saved model(s), and
    ``nbgrader autograde`` must never hand those points out for a notebook that merely runs.
    nbgrader strips the hidden test from release/, so a student's notebook runs clean.
    """
    import nbformat

    files = [spec.file for spec in assignment.models]
    one = len(files) == 1
    md = "## How this notebook is graded\n\n" + textwrap.fill(
        f"The course autograder grades the {'model' if one else 'models'} you saved above, {_file_list(files)}, "
        f"outside this notebook: it reads {'the' if one else 'each'} model's architecture from the file and "
        f"measures how well {'it does' if one else 'each does'} on test data that this notebook never sees. "
        f"Each cell below names one of its checks and the points it is worth "
        f"({_points_text(assignment.max_score)} in all); running them does nothing, so make sure that the "
        f"save cell above ran after your final training.",
        width=100,
    )
    md += "\n\n" + threshold_text(assignment)
    cells = [_locked(nbformat.v4.new_markdown_cell(md), GRADING_MD_ID)]
    for check in assignment.checks:
        gid = check_cell_id(check)
        source = (
            f"# Check `{check.id}` ({_points_text(check.points)}): {check.title}.\n"
            f"# The course autograder scores it from {assignment.model_of(check.id).file}; "
            f"running this cell does nothing.\n"
            "### BEGIN HIDDEN TESTS\n"
            "raise AssertionError(\n"
            f"    \"check '{check.id}' is scored by the course autograder (autograder grade) from the saved \"\n"
            "    \"model, not by nbgrader autograde; record its score with `autograder gradebook`\"\n"
            ")\n"
            "### END HIDDEN TESTS"
        )
        cells.append(_locked(nbformat.v4.new_code_cell(source), gid, points=_points(check.points)))
    return cells


CHECK_MD_ID = "hand_in_check_md"
CHECK_SAVED_ID = "hand_in_check"


def check_saved_cells(assignment: course_config.Assignment) -> list[NotebookNode]:
    """The section right after the save cell: the student's check of the saved files, run as the grader reads them."""
    import pprint

    import nbformat

    from autograder.course_check import facts_of

    files = [spec.file for spec in assignment.models]
    md = "## Check before you hand in\n\n" + textwrap.fill(
        f"This cell reads {_file_list(files)} exactly as the grader will, with its own reader and engine "
        f"(`course_check.py` and the `keras_numpy` folder next to this notebook), runs its architecture checks, and "
        f"compares the grader's predictions with your model's own on the validation "
        f"{'images' if assignment.dataset == 'mnist' else 'events'}. It prints each check as passed (✓) or why not "
        f"(✗), and your validation figure beside the thresholds for full and partial credit. It needs no test "
        f"labels and no network. If a check fails, fix the model, train it again and re-run the save cell above "
        f"before this one.",
        width=100,
    )
    models = ", ".join(f'"{spec.name}": {spec.variable}' for spec in assignment.models)
    x_val, y_val = assignment.validation
    facts = pprint.pformat(facts_of(assignment, course_config.DEFAULT_PROFILE), width=100, sort_dicts=False)
    source = (
        "from course_check import check_saved_models\n\n"
        f"# Written by `autograder release` from course_config.py: the checks, their points and the\n"
        f"# thresholds of the '{course_config.DEFAULT_PROFILE}' profile, with which saved models are graded.\n"
        f"FACTS = {facts}\n"
        f"check_saved_models(FACTS, models={{{models}}}, x_val={x_val}, y_val={y_val})"
    )
    return [_locked(nbformat.v4.new_markdown_cell(md), CHECK_MD_ID),
            _locked(nbformat.v4.new_code_cell(source), CHECK_SAVED_ID)]


HELPER_CELL_ID = "fetch_helpers"
HELPER_CELL_BEFORE = "imports"  # the generated helper cell goes right before this cell

_HELPER_CODE = """\
# The course's helper files come with this notebook. Where one is missing (on Colab, say), this cell
# downloads the published copy and checks that it is exactly the file released with this notebook.
import hashlib, importlib, pathlib, urllib.request

HELPERS = {helpers!r}  # file: SHA-256 of the released copy
HELPERS_URL = {url!r}
for name, sha256 in HELPERS.items():
    path = pathlib.Path(name)
    if path.exists():
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            print(f"note: {{name}} differs from the copy released with this notebook (an older release?)")
        continue
    how = (f"upload {{name}} from the assignment's folder next to this notebook, as {{path}} (on Colab: the "
           "Files panel; or upload the whole folder as a zip and unzip it)")
    if not HELPERS_URL:
        raise FileNotFoundError(f"{{name}} is missing: {{how}}")
    try:
        with urllib.request.urlopen(HELPERS_URL + name, timeout=30) as response:
            data = response.read()
    except OSError as exc:
        raise RuntimeError(f"could not download {{HELPERS_URL + name}} ({{exc}}); offline? {{how}}") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise RuntimeError(f"the downloaded {{name}} is not the released file (SHA-256 mismatch), so it was not "
                           f"used; tell your instructor, and {{how}}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    importlib.invalidate_caches()
    print(f"downloaded {{name}} from {{HELPERS_URL}} (SHA-256 checked)")"""


def helper_cell_source(assignment: course_config.Assignment, url: str | None = None,
                       helpers_dir: Path = HELPERS_DIR) -> str:
    """The code of the notebook cell that fetches missing helpers from ``url`` (default: course_config)."""
    import hashlib

    url = course_config.HELPERS_URL if url is None else url
    url = url.replace("{assignment}", assignment.name)
    if url and not url.endswith("/"):
        url += "/"
    helpers = {h: hashlib.sha256((helpers_dir / h).read_bytes()).hexdigest() for h in helper_files(assignment, helpers_dir)}
    return _HELPER_CODE.format(helpers=helpers, url=url)


def helper_cell(assignment: course_config.Assignment) -> NotebookNode:
    import nbformat

    return _locked(nbformat.v4.new_code_cell(helper_cell_source(assignment)), HELPER_CELL_ID)


def _is_grading_cell(cell) -> bool:
    gid = grade_id(cell) or ""
    return gid in (GRADING_MD_ID, CHECK_MD_ID, CHECK_SAVED_ID) or gid.startswith(CHECK_CELL_PREFIX)


def save_cell_index(nb, assignment: course_config.Assignment) -> int:
    """Index of the (last) code cell that saves every model file of ``assignment``."""
    for i in range(len(nb.cells) - 1, -1, -1):
        cell = nb.cells[i]
        if cell.cell_type == "code" and all(f'"{spec.file}"' in cell.source for spec in assignment.models):
            return i
    files = ", ".join(spec.file for spec in assignment.models)
    raise ReleaseError(f"{assignment.notebook}: no code cell saves {files}; the grading section goes after it")


def with_grading_cells(nb, assignment: course_config.Assignment):
    """A copy of ``nb`` with the cells course_config generates: the grading section right after the save
    cell and, for an assignment with helper files, the helper-fetching cell right before the imports."""
    import copy

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if not _is_grading_cell(c) and grade_id(c) != HELPER_CELL_ID]
    at = save_cell_index(nb, assignment) + 1
    nb.cells[at:at] = check_saved_cells(assignment) + grading_cells(assignment)
    if assignment.helpers:
        at = next((i for i, c in enumerate(nb.cells) if grade_id(c) == HELPER_CELL_BEFORE), None)
        if at is None:
            raise ReleaseError(f"{assignment.notebook}: no cell with grade_id {HELPER_CELL_BEFORE!r}; the cell that "
                               "fetches the helper files goes right before it")
        nb.cells.insert(at, helper_cell(assignment))
    return nb


def sync_grading_cells(assignment: course_config.Assignment, course_dir: Path = course_config.COURSE_DIR,
                       *, write: bool = True) -> bool:
    """Bring the grading section of ``source/<a>/<a>.ipynb`` in line with course_config.

    Existing grading cells are replaced (so changed points, titles or checks reach the notebook).
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


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: the venv's scripts first on PATH (nbgrader runs ``alembic``)."""
    return {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}


def _nbgrader(command: str, assignment: str, root: Path, *extra: str) -> None:
    """Run one nbgrader command in the scratch course ``root`` (its gradebook lives there too)."""
    argv = [
        sys.executable, "-m", "nbgrader", command, assignment, "--force",
        f"--CourseDirectory.root={root}", "--log-level=WARN", *extra,
    ]
    res = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=nbgrader_env())
    if res.returncode != 0:
        raise ReleaseError(f"nbgrader {command} {assignment} failed:\n{res.stdout}{res.stderr}")


def build(assignment: course_config.Assignment, course_dir: Path, target_root: Path) -> None:
    """Generate ``target_root/release/<a>`` and ``target_root/solutions/<a>`` from ``course_dir/source/<a>``."""
    source = course_dir / "source" / assignment.name
    if not (source / assignment.notebook).is_file():
        raise ReleaseError(f"{source / assignment.notebook} does not exist")
    shutil.copytree(source, target_root / "source" / assignment.name, ignore=shutil.ignore_patterns(*IGNORED))
    for helper in helper_files(assignment):  # the helpers as autograder/ has them, whatever source/ holds
        (target_root / "source" / assignment.name / helper).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HELPERS_DIR / helper, target_root / "source" / assignment.name / helper)
    (target_root / "nbgrader_config.py").write_text(NBGRADER_CONFIG)
    for command in OUTPUTS.values():
        _nbgrader(command, assignment.name, target_root)


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
        sync_helpers(assignment, course_dir)
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
    untracked = set(helper_files(assignment))  # solutions/' copies of the helpers are the instructor's, not product
    if sync_grading_cells(assignment, course_dir, write=False):
        problems.append(f"source/{name}/{assignment.notebook}: its generated cells (grading section, helper fetch) "
                        "are out of sync with course_config")
    with tempfile.TemporaryDirectory(prefix="autograder-drift-") as tmp:
        build(assignment, course_dir, Path(tmp))
        for out in OUTPUTS:
            fresh, committed = _files(Path(tmp) / out / name), _files(course_dir / out / name)
            if out == "solutions":
                fresh, committed = ({rel: p for rel, p in files.items() if rel not in untracked} for files in (fresh, committed))
            for rel in sorted(set(fresh) | set(committed)):
                if rel not in committed:
                    problems.append(f"{out}/{name}/{rel} is missing")
                elif rel not in fresh:
                    problems.append(f"{out}/{name}/{rel} is not produced from source/")
                elif fresh[rel].read_bytes() != committed[rel].read_bytes():
                    problems.append(f"{out}/{name}/{rel} differs from what source/ generates")
    return problems
