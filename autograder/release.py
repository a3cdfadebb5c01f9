"""Build the student release and the solutions from ``source/`` with real nbgrader.

``autograder release`` copies the course's shared helpers (e.g. ``course_data.py``) into each
``source/<assignment>/``, then runs ``nbgrader generate_assignment`` (-> ``release/``) and
``nbgrader generate_solution`` (-> ``solutions/``) in a scratch course folder and puts the results
in place. Both outputs are committed; :func:`drift` tells whether they still match ``source/``.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import course_config

HELPERS_DIR = Path(__file__).resolve().parent
OUTPUTS = {"release": "generate_assignment", "solutions": "generate_solution"}
IGNORED = {".ipynb_checkpoints", "__pycache__", ".nbgrader.log", "gradebook.db"}
# nbgrader's configuration for the scratch course. Solutions are not executed: outputs would make
# them differ from run to run (and training takes minutes); students run them themselves.
NBGRADER_CONFIG = """\
from nbgrader.preprocessors import ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells

c = get_config()
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.solution_directory = "solutions"
c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearMarkScheme]
"""


class ReleaseError(RuntimeError):
    """nbgrader refused the source notebook; the message carries nbgrader's own words."""


def sync_helpers(assignment: course_config.Assignment, course_dir: Path = course_config.COURSE_DIR) -> list[Path]:
    """Copy the shared helper files into ``source/<assignment>/``; return the files that changed."""
    changed = []
    for helper in assignment.helpers:
        src, dst = HELPERS_DIR / helper, course_dir / "source" / assignment.name / helper
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copyfile(src, dst)
            changed.append(dst)
    return changed


def _nbgrader(command: str, assignment: str, root: Path) -> None:
    """Run one nbgrader command in the scratch course ``root`` (its gradebook lives there too)."""
    argv = [
        sys.executable, "-m", "nbgrader", command, assignment, "--force",
        f"--CourseDirectory.root={root}", "--log-level=WARN",
    ]
    # nbgrader runs `alembic` for its gradebook: it must find the venv's scripts on PATH.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    res = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise ReleaseError(f"nbgrader {command} {assignment} failed:\n{res.stdout}{res.stderr}")


def build(assignment: course_config.Assignment, course_dir: Path, target_root: Path) -> None:
    """Generate ``target_root/release/<a>`` and ``target_root/solutions/<a>`` from ``course_dir/source/<a>``."""
    source = course_dir / "source" / assignment.name
    if not (source / assignment.notebook).is_file():
        raise ReleaseError(f"{source / assignment.notebook} does not exist")
    shutil.copytree(source, target_root / "source" / assignment.name, ignore=shutil.ignore_patterns(*IGNORED))
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
    """Regenerate release/ and solutions/ for the named (default: all) assignments; list what was written."""
    written = []
    for name in names or list(course_config.ASSIGNMENTS):
        assignment = course_config.assignment(name)
        sync_helpers(assignment, course_dir)
        with tempfile.TemporaryDirectory(prefix="autograder-release-") as tmp:
            build(assignment, course_dir, Path(tmp))
            for out in OUTPUTS:
                dst = course_dir / out / name
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(Path(tmp) / out / name, dst, ignore=shutil.ignore_patterns(*IGNORED))
                written.append(str(dst.relative_to(course_dir)))
    return written


def drift(name: str, course_dir: Path = course_config.COURSE_DIR) -> list[str]:
    """Differences between the committed release/solutions of ``name`` and a fresh build; [] if in sync."""
    assignment = course_config.assignment(name)
    problems = []
    for helper in assignment.helpers:
        copy = course_dir / "source" / name / helper
        if not copy.exists() or not filecmp.cmp(HELPERS_DIR / helper, copy, shallow=False):
            problems.append(f"source/{name}/{helper} differs from autograder/{helper}")
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
