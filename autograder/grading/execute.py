"""Re-executing a student's notebook in the sandbox, and telling the student what went wrong.

``execute_notebook`` puts back the release's read-only cells (the helper cell that carries the course's
helpers among them), leaves out the check cells after the save cell (the grader grades the saved
files itself), injects the profile's parameters after the notebook's ``parameters`` cell, runs every
cell in the sandbox on data without test labels, and leaves the model files that run saved; it
returns an :class:`Execution`, where what failed is a note in the student's words.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from autograder import sandbox
from autograder.grading.missing import missing_causes
from autograder.model_files.locate import expected_names
from autograder.notebook import INJECTED_TAG, grade_id, is_check_cell

EXECUTED_NOTEBOOK = "executed.ipynb"


def run_files(assignment: course_config.Assignment) -> list[str]:
    """The files a re-run leaves in a student's output folder: the executed notebook and the model files it
    saved (each model under its name or its ``.h5`` twin's), which a later run replaces or removes."""
    names = [EXECUTED_NOTEBOOK]
    for spec in assignment.models:
        names += expected_names(spec.file, spec.formats)
    return names


def inject_parameters(nb, parameters: dict[str, object], profile: str):
    """Insert a cell after the one tagged ``parameters`` (papermill's convention) setting ``parameters``."""
    import nbformat

    lines = [f"# Injected by the autograder (profile {profile!r})"]
    lines += [f"{name} = {value!r}" for name, value in parameters.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": [INJECTED_TAG]})
    cell["id"] = INJECTED_TAG
    index = next(
        (i + 1 for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        0,
    )
    nb.cells.insert(index, cell)
    return index


def restore_locked_cells(nb, release_nb, title: str = "assignment") -> tuple[bool, list[str]]:
    """Make ``nb`` run as the assignment intends, as ``nbgrader autograde`` does; returns (runnable, notes).

    Read-only ("locked") cells of the release that were changed are put back as released; deleted
    ones are put back after the cell that precedes them in the release. Copies of a cell (a
    duplicated ``grade_id``) are left out of the run. An empty notebook, or one where most read-only
    cells are missing or different (another assignment's), is not run. Every repair is a note for the
    student.
    """
    released = [(c_id, c) for c in release_nb.cells if (c_id := grade_id(c))]
    order = [c_id for c_id, _ in released]
    if not nb.cells:
        return False, ["the notebook is empty: it has no cells"]
    locked = {c_id: c.get("source") for c_id, c in released if c.metadata["nbgrader"].get("locked")}
    intact = {grade_id(c) for c in nb.cells if grade_id(c) in locked and c.get("source") == locked[grade_id(c)]}
    if len(intact) * 2 < len(locked):
        return False, [f"this is not the {title} notebook: {len(locked) - len(intact)} of its {len(locked)} "
                       "read-only cells are missing or different (another assignment's notebook?); it was not run"]
    notes = []
    mine_by_id, kept = {}, []  # the student's cells by grade_id, first copy only
    for cell in nb.cells:
        c_id = grade_id(cell)
        if c_id in mine_by_id:
            notes.append(f"cell {c_id!r} appears more than once (a copied cell?); only the first was run")
            continue
        if c_id:
            mine_by_id[c_id] = cell
        kept.append(cell)
    nb.cells = kept
    changed, restored = [], []
    for index, (c_id, original) in enumerate(released):
        if c_id not in locked:
            continue
        mine = mine_by_id.get(c_id)
        if mine is None:
            previous = {p for p, _ in released[:index]}
            at = max((i + 1 for i, c in enumerate(nb.cells) if grade_id(c) in previous), default=0)
            nb.cells.insert(at, copy.deepcopy(original))
            restored.append(c_id)
        elif mine.get("source") != original.get("source") or mine.get("cell_type") != original.get("cell_type"):
            mine["cell_type"], mine["source"] = original["cell_type"], original["source"]
            for key in ("outputs", "execution_count"):
                if key in original:
                    mine[key] = original[key]
                elif key in mine:
                    del mine[key]
            changed.append(c_id)
    if changed:
        notes.append(f"read-only cell(s) {', '.join(changed)} were changed; the grader ran them as released")
    if restored:
        notes.append(f"read-only cell(s) {', '.join(restored)} were deleted; the grader put them back")
    missing = [c_id for c_id in order if c_id not in locked and c_id not in mine_by_id]
    if missing:
        notes.append(f"answer cell(s) {', '.join(missing)} are missing (deleted?)")
    now = [c_id for c_id in (grade_id(c) for c in nb.cells) if c_id in order]
    if now != [c_id for c_id in order if c_id in now]:
        first = next(a for a, b in zip(now, [c for c in order if c in now]) if a != b)
        notes.append(f"cells are not in the assignment's order (cell {first!r} was moved); they ran in your order")
    return True, notes


@dataclass
class Execution:
    """How re-running a student's notebook went: the results file's record, notes for the student."""

    report: dict = field(default_factory=dict)  # status, what the run used, first_cause when a cell broke the rest
    notes: list[str] = field(default_factory=list)
    limits_hit: list[str] = field(default_factory=list)


def execute_notebook(workdir: Path, assignment: course_config.Assignment, task, *, profile: course_config.Profile,
                     limits: course_config.Limits, release_dir: Path, backend: str, keep_dir: Path | None,
                     threads: int = 0, gpus: int = 0) -> Execution:
    """Run the student's notebook in ``workdir`` in the sandbox, leaving the model files that run saves.

    ``release_dir`` is the assignment's released folder: its notebook's read-only cells are put back as
    released (the helper cell, which carries the course's helpers, among them). ``gpus`` > 0: the notebook runs with this machine's GPU devices."""
    import nbformat

    a = assignment
    nb_path = workdir / a.notebook
    if not nb_path.is_file():
        found = sorted(p.name for p in workdir.glob("*.ipynb"))
        return Execution({"status": "missing"}, [
            f"notebook {a.notebook} not found in the submission (found: {', '.join(found) or 'no notebooks'})"])
    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception as exc:
        return Execution({"status": "unreadable"}, [f"{a.notebook} is not a valid notebook ({type(exc).__name__}: {exc})"])
    # Grade only what this run saves, never a model file that came with the submission.
    for spec in a.models:
        for name in expected_names(spec.file, spec.formats):  # its .h5 twin and other formats too
            (workdir / name).unlink(missing_ok=True)
    execution = Execution()
    release_nb = release_dir / a.notebook
    if release_nb.is_file():
        runnable, repairs = restore_locked_cells(nb, nbformat.read(release_nb, as_version=4), f'"{a.title}"')
        execution.notes.extend(repairs)
        if not runnable:
            execution.report = {"status": "not run"}
            return execution
    nb.cells = [c for c in nb.cells if not is_check_cell(c)]  # they check the saved files: the grader does that
    injected_at = inject_parameters(nb, a.parameters.get(profile.name, {}), profile.name)
    nbformat.write(nb, nb_path)
    sandbox.install_job(workdir)
    argv = sandbox.python_argv(
        "execute", f"{sandbox.WORK}/{a.notebook}", f"{sandbox.WORK}/.{EXECUTED_NOTEBOOK}", f"{sandbox.WORK}/.execution.json"
    )
    devices = sandbox.gpu_devices() if gpus else None
    result = sandbox.run_job(
        argv,
        workdir,
        time_limit_s=profile.execute_time_limit_s,
        memory_limit_mb=profile.memory_limit_mb,
        data_dir=task.sandbox_data_dir(),
        backend=backend,
        threads=threads,
        devices=devices,
        **limits.job_args(),
    )
    report = read_json(workdir / ".execution.json")
    execution.report = {"status": "ok" if result.ok and report.get("status") == "ok" else "failed", **result.usage()}
    if gpus:
        execution.report["gpu_devices"] = sorted(devices)
    execution.limits_hit = [f"{limit} (running the notebook)" for limit in result.limits_hit()]
    executed = workdir / f".{EXECUTED_NOTEBOOK}"
    if keep_dir is not None and executed.is_file() and not executed.is_symlink():
        if executed.stat().st_size < 50 * 2**20:
            shutil.copyfile(executed, keep_dir / EXECUTED_NOTEBOOK)
    stopped = result.timed_out or result.memory_exceeded or result.disk_exceeded
    errors = report.get("errors", [])
    notes = execution.notes
    if stopped:
        notes.append(f"running the notebook stopped: {result.problem()}")
        execution.report["first_cause"] = f"the notebook run stopped: {result.problem()}"
    elif report.get("status") == "error":
        notes.append(describe_errors(errors, limits, injected_at))
        full = [e for e in errors if sandbox.NO_SPACE in str(e.get("evalue"))]
        if full:  # a cell filled the disk: what the notebook saves after it is incomplete
            execution.report["first_cause"] = describe_errors(full, limits, injected_at).replace(
                "the notebook raised", "the notebook ran out of space:", 1)
    elif not result.ok:
        notes.append(f"running the notebook failed: {result.problem()}")
    if not stopped:  # each model file the run did not save: why, from the cell that saves it (not the first error)
        causes = missing_causes(workdir / f".{EXECUTED_NOTEBOOK}", a, injected_at)
        if causes:
            execution.report["not_saved"] = causes
    if result.processes_refused and not stopped:
        notes.append(
            f"the process limit ({result.limits['max_processes']} processes and threads) was reached: the kernel "
            f"refused {result.processes_refused} new one(s)"
        )
    return execution


def describe_errors(errors: list[dict], limits: course_config.Limits, injected_at: int | None = None) -> str:
    """The first error a notebook raised, where, and how many followed (student-facing)."""
    if not errors:
        return "the notebook raised an error"
    first = errors[0]
    error = f"{first.get('ename')}: {first.get('evalue')}" if first.get("evalue") else str(first.get("ename"))
    where = ""
    if isinstance(first.get("cell"), int):
        # Number cells from 1 as the student sees them: without the cell the grader injected.
        index = first["cell"]
        if INJECTED_TAG in first.get("tags", []):
            where = " in the grader's parameter cell"
        else:
            where = f" in cell {index if injected_at is not None and index > injected_at else index + 1}"
        if first.get("grade_id"):
            where += f" ({first['grade_id']})"
    hint = " (a `YOUR CODE HERE` cell is not filled in yet)" if first.get("ename") == "NotImplementedError" else ""
    if first.get("ename") == "DeadKernelError":
        hint = " (the notebook's Python process stopped: os._exit, sys.exit in a subprocess, or a crash)"
    if sandbox.NO_SPACE in str(first.get("evalue")):
        hint = f" ({sandbox.space_limits(limits.tmp_limit_mb, limits.disk_limit_mb)})"
    more = f"; {len(errors) - 1} later cell(s) failed too" if len(errors) > 1 else ""
    return f"the notebook raised {error}{where}{hint}{more}"


def read_json(path: Path) -> dict:
    """A small JSON object written by a sandboxed job, or {} if absent, too large or not an object."""
    try:
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 2**20:
            data = json.loads(path.read_text())
            return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        pass
    return {}
