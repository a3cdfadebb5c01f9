"""Why a model file is missing after the grader re-ran a notebook: the cell that saves it, followed back to the
first error that left its inputs undefined (a failed import, a cell not filled in), in the student's words.

The executed notebook comes back from the sandbox, so everything in it is untrusted: types are checked, and
what is read is bounded (cells, characters, cells followed back, code parsed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import course_config
from autograder.model_files.locate import expected_names
from autograder.notebook import INJECTED_TAG, grade_id

# What a notebook the grader runs can import (the course's pinned packages; only those installed are named).
NOTEBOOK_PACKAGES = (("numpy", "NumPy"), ("pandas", "pandas"), ("sklearn", "scikit-learn"), ("keras", "Keras"),
                     ("tensorflow", "TensorFlow"), ("xgboost", "XGBoost"), ("lightgbm", "LightGBM"),
                     ("matplotlib", "matplotlib"), ("skops", "skops"))
# Bounds on what is read of an executed notebook: cells, characters of a cell, cells followed back, and
# characters of code parsed in all.
MAX_CELLS, MAX_SOURCE, MAX_LINKS, MAX_PARSED = 2000, 20_000, 25, 100_000
SAVE_CALLS = re.compile(r"\.save\w*\s*\(|\bdump\s*\(|\bsave_model\s*\(")
IPYTHON_LINE = re.compile(r"^\s*[%!]|^[^#'\"]*=\s*[%!]")  # magics and shell lines, which Python cannot parse


@dataclass(frozen=True)
class _Cell:
    """One code cell of an executed notebook, as far as the grader trusts it (types checked, lengths cut)."""

    index: int
    source: str
    grade_id: str | None
    tags: tuple[str, ...]
    error: tuple[str, str] | None  # its first error: (ename, evalue's first line, shortened)
    ran: bool


def _short(text: object, limit: int = 160) -> str:
    line = " ".join(str(text).strip().splitlines()[:1]).strip() if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _code_cells(cells) -> list[_Cell]:
    """The code cells of an executed notebook's ``cells`` (untrusted: what does not have the right types is left out)."""
    out = []
    for index, cell in enumerate(cells[:MAX_CELLS] if isinstance(cells, list) else []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if not isinstance(source, str):
            continue
        meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
        gid = grade_id({"metadata": meta})
        tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
        error = None
        outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
        for output in outputs:
            if isinstance(output, dict) and output.get("output_type") == "error":
                error = (_short(output.get("ename"), 60) or "an error", _short(output.get("evalue")))
                break
        out.append(_Cell(index, source[:MAX_SOURCE], _short(gid, 80) or None,
                         tuple(t for t in tags[:20] if isinstance(t, str)),
                         error, isinstance(cell.get("execution_count"), int) or error is not None))
    return out


def _cell_name(cell: _Cell, injected_at: int | None) -> str:
    """How the student finds a cell: its number as they see it (the grader's cell left out) and its grade_id."""
    if INJECTED_TAG in cell.tags:
        return "the grader's parameter cell"
    number = cell.index if injected_at is not None and cell.index > injected_at else cell.index + 1
    return f"cell {number}" + (f" ({cell.grade_id})" if cell.grade_id else "")


def _bindings(source: str) -> set[str] | None:
    """The names a cell's code binds at the notebook's top level (assigns, imports, defines, loops over), or None
    when it is not Python (then :func:`_binds` looks line by line)."""
    import ast

    lines = source.splitlines()
    if lines and re.match(r"\s*%%(time|timeit|capture|prun)\b", lines[0]):  # cell magics whose body is Python
        lines = lines[1:]
    # A timed statement is a statement ("%time dnn = build()"); other magics and shell lines are left out.
    lines = [re.sub(r"^(\s*)%(time|timeit|prun)\s+", r"\1", line) if "%" in line else line for line in lines]
    try:
        tree = ast.parse("\n".join("" if IPYTHON_LINE.match(line) else line for line in lines))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # what a function binds is its own
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        if not isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            todo.extend(ast.iter_child_nodes(node))
    return names


def _binds(source: str, name: str) -> bool:
    """Whether a line of code that is not Python as a whole binds ``name`` (each line read up to 400 characters)."""
    word = re.escape(name)
    pattern = re.compile(rf"(^|[\s,(])\*?{word}\s*(,[^=]*)?(=(?!=)|[-+*/@%&|^]=)|^\s*(def|class)\s+{word}\b"
                         rf"|\bimport\b.*\b{word}\b|^\s*for\s[^=]*\b{word}\b.*\bin\b|\bas\s+{word}\b")
    return any(name in line and pattern.search(line[:400]) for line in source.splitlines())


def _missing_module(evalue: str, helpers: tuple[str, ...]) -> str | None:
    """The top-level module of "No module named 'x.y'", if it is not installed here (where notebooks run too) and
    is not one of the course's ``helpers`` (which the notebook's helper cell unpacks)."""
    import importlib.util

    found = re.match(r"No module named '([A-Za-z_][\w.]{0,100})'", evalue)
    if not found:
        return None
    top = found.group(1).split(".")[0]
    try:
        installed = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        installed = False
    return None if installed or top in helpers else top


def _packages() -> str:
    import importlib.util

    names = []
    for module, name in NOTEBOOK_PACKAGES:
        try:
            if importlib.util.find_spec(module) is not None:
                names.append(name)
        except (ImportError, ValueError):
            pass
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _error_text(cell: _Cell, helpers: tuple[str, ...]) -> tuple[str, str]:
    """A cell's error as the student reads it, and what to do about it when the grader knows (else "")."""
    ename, evalue = cell.error
    module = _missing_module(evalue, helpers) if ename == "ModuleNotFoundError" else None
    hint = (f": {module} is not installed where the grader runs notebooks, which have only the course's packages "
            f"(such as {_packages()})") if module else ""
    if ename == "NotImplementedError":
        hint = ": a `YOUR CODE HERE` cell is not filled in yet"
    return (f"{ename}: {evalue}" if evalue else ename), hint


def cause_of_missing(cells, names: str | list[str] | tuple[str, ...], *, injected_at: int | None = None,
                     helpers: tuple[str, ...] = ()) -> str | None:
    """Why an executed notebook left no model file named ``names`` (the file, or each name it may have), in the
    student's words: the cell that saves it and its error, followed back through the NameErrors it raised to
    the first error that left its inputs undefined (a failed import: the module named). Errors of cells that
    have nothing to do with the file are not named. None when ``cells`` (an executed notebook's cells: untrusted,
    checked here) has no code cells. ``injected_at``: where the grader's parameter cell is (cells are numbered
    as the student sees them, without it); ``helpers``: the modules the notebook's helper cell provides.
    """
    names = [names] if isinstance(names, str) else list(names)
    code = _code_cells(cells)
    if not code or not names:
        return None
    stems = {Path(n).stem for n in names}
    savers = [c for c in code if any(n in c.source for n in names)]
    savers = [c for c in savers if SAVE_CALLS.search(c.source)] or savers
    savers = savers or [c for c in code if any(s in c.source for s in stems) and SAVE_CALLS.search(c.source)]
    if not savers:
        return f"the notebook has no cell that saves {names[0]}"
    saver = next((c for c in savers if c.error), None) or next((c for c in reversed(savers) if c.ran), savers[-1])
    here = f"{_cell_name(saver, injected_at)}, the cell that saves it,"
    if saver.error is None:
        if not saver.ran:
            why = "it is tagged skip-execution" if "skip-execution" in saver.tags else "the run ended before it"
            return f"{here} did not run ({why})"
        return f"{here} ran without an error but left no {names[0]} next to the notebook"
    # Follow a NameError back to the last cell before it that binds the name, as long as that cell failed too.
    # Each cell is read once per name, and no more than MAX_PARSED characters of code in all (a notebook made to be
    # slow to read is not read to its end).
    read, budget = {}, [MAX_PARSED]

    def defines(c: _Cell, name: str) -> bool:
        if name not in c.source:
            return False
        if (c.index, name) not in read:
            budget[0] -= len(c.source)
            if budget[0] < 0:
                return False
            if c.index not in read:
                read[c.index] = _bindings(c.source)
            read[c.index, name] = name in read[c.index] if read[c.index] is not None else _binds(c.source, name)
        return read[c.index, name]

    chain, tail, cell = [(saver, None)], "", saver
    while cell.error[0] == "NameError" and len(chain) <= MAX_LINKS:
        found = re.match(r"name '(\w{1,100})' is not defined", cell.error[1])
        if not found:
            break
        name = found.group(1)
        definer = next((c for c in reversed(code) if c.index < cell.index and defines(c, name)), None)
        if definer is None:
            tail = f", and no cell before it defines {name}"
            break
        if definer.error is None:
            tail = (f", though {_cell_name(definer, injected_at)}, which defines {name}, "
                    + ("ran without an error" if definer.ran else "did not run"))
            break
        chain.append((definer, name))
        cell = definer
    else:
        if cell.error[0] == "NameError" and re.match(r"name '\w+' is not defined", cell.error[1]):
            tail = f" (the grader stopped following the trail after {MAX_LINKS} cells)"
    root = chain[-1][0]
    if len(chain) == 1:
        error, hint = _error_text(root, helpers)
        return f"{here} raised {error}{tail}{hint}"
    # chain: [(saver, None), (definer of what the saver missed, name), ...]: told from the root to the saver
    links = [(chain[i][0], chain[i + 1][1]) for i in range(len(chain) - 1)][::-1]  # (cell that missed, name)
    told = [f"{name} undefined in {_cell_name(c, injected_at)}" for c, name in links]
    if len(told) > 4:
        told = told[:2] + [f"… ({len(told) - 3} more cells)"] + told[-1:]
    left = told[0] if len(told) == 1 else ", ".join(told[:-1]) + " and " + told[-1]
    error, hint = _error_text(root, helpers)
    return f"{_cell_name(root, injected_at)} raised {error}{tail}, which left {left}, the cell that saves it{hint}"


def missing_causes(executed: Path, assignment: course_config.Assignment, injected_at: int | None) -> dict[str, str]:
    """For each model file the run left no file for (under any of its names, beside ``executed``, the executed
    notebook the sandbox wrote): :func:`cause_of_missing`, from that notebook (read only when small enough, and
    as untrusted)."""
    workdir = executed.parent
    missing = {spec.file: expected_names(spec.file, spec.formats) for spec in assignment.models}
    missing = {file: names for file, names in missing.items()
               if not any((workdir / n).exists() or (workdir / n).is_symlink() for n in names)}
    if not missing or not executed.is_file() or executed.is_symlink() or executed.stat().st_size >= 50 * 2**20:
        return {}
    try:
        cells = json.loads(executed.read_bytes()).get("cells")
    except (OSError, ValueError, AttributeError, RecursionError):
        return {}
    helpers = tuple(Path(h).stem for h in assignment.helpers)
    causes = {file: cause_of_missing(cells, names, injected_at=injected_at, helpers=helpers)
              for file, names in missing.items()}
    return {file: cause for file, cause in causes.items() if cause}
