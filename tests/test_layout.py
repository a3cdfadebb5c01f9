"""The package's shape: every package installs, no import cycle, no module over 600 lines without a reason."""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "autograder"
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """autograder's modules by dotted name (a package by its __init__.py)."""
    found = {}
    for path in sorted(KIT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The kit modules ``path`` imports anywhere in it (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in out if m in known and m != name}


def test_every_package_is_installed():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in KIT.rglob("__init__.py")}
    assert packages == listed, f"pyproject.toml [tool.setuptools] packages: missing {packages - listed}, stale {listed - packages}"


def test_no_import_cycle():
    mods = modules()
    # A package's face (its __init__) re-exports its modules; importing a module runs the face first, so
    # the face's own imports count for it, but the face importing its own modules is not a cycle.
    graph = {name: {m for m in imports(path, name, set(mods)) if not (path.name == "__init__.py" and m.startswith(name + "."))}
             for name, path in mods.items()}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    sys.setrecursionlimit(10000)
    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_long_modules_say_why():
    for name, path in modules().items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            assert "on purpose" in doc, f"{path.relative_to(ROOT)} has {lines} lines: split it, or say at its top why it is one file"


# The kit's parts, bottom first: a part imports only parts before it (its own modules aside). Types and the
# code that ships to students at the bottom; the data and the sandbox; grading one submission; the course's
# notebooks and the exporters; the batch and where it runs; the entry points at the top.
LAYERS = (
    "autograder", "config", "course_data", "keras_numpy", "model_files", "model_checks", "results", "similarity",
    "notebook", "datasets", "sandbox", "checks", "grading", "course_check", "release", "scaffold", "exporters",
    "classwide", "worker",
    "serve", "cluster", "batch", "audit", "nbgrader_plugins", "gradescope", "demo", "cli", "__main__",
)


def part(module: str) -> str:
    """The kit's part a module belongs to: its package or module right under autograder/."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_runs_back_up():
    mods = modules()
    assert {part(m) for m in mods} == set(LAYERS), f"parts missing from LAYERS: {({part(m) for m in mods}) - set(LAYERS)}"
    upward = []
    for name, path in mods.items():
        for target in imports(path, name, set(mods)):
            if LAYERS.index(part(target)) > LAYERS.index(part(name)):
                upward.append(f"{name} imports {target}")
    assert not upward, "imports that run back up (tests/test_layout.py LAYERS):\n" + "\n".join(sorted(upward))


# The modules that may name a dataset: the dataset's own (grader's side, student's side) and the registry.
DATASET_MODULES = {"autograder/config.py", "autograder/datasets/mnist.py", "autograder/datasets/susy.py",
                   "autograder/datasets/susy_sim.py", "autograder/course_data/mnist.py", "autograder/course_data/susy.py"}


def dataset_branches(path: Path, names: set[str]) -> list[str]:
    """Where ``path`` compares something with a dataset's name, or reads an assignment's dataset to compare it."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        constants = {c.value for o in operands for c in ast.walk(o) if isinstance(c, ast.Constant)}
        reads_dataset = any(isinstance(o, ast.Attribute) and o.attr == "dataset"
                            or isinstance(o, ast.Subscript) and isinstance(o.slice, ast.Constant) and o.slice.value == "dataset"
                            or isinstance(o, ast.Name) and o.id == "dataset"
                            for o in operands)
        if constants & names or (reads_dataset and any(isinstance(o, ast.Constant) for o in operands)):
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_branch_on_a_dataset_name_outside_its_module():
    import course_config
    from autograder.config import BUILT_IN_DATASETS

    names = set(BUILT_IN_DATASETS) | {a.dataset for a in course_config.ASSIGNMENTS.values()}
    found = [line for path in sorted(KIT.rglob("*.py")) if str(path.relative_to(ROOT)) not in DATASET_MODULES
             for line in dataset_branches(path, names)]
    assert not found, "branches on a dataset's name outside its module (give the dataset's Task a fact instead):\n" + \
        "\n".join(found)


def test_the_dataset_grep_finds_a_branch(tmp_path):
    """The test above can fail: it finds the branches the kit used to have."""
    sample = tmp_path / "sample.py"
    sample.write_text('if assignment.dataset == "mnist":\n    pass\nunit = "images" if facts["dataset"] == "x" else "events"\n'
                      'ok = spec.kind == "keras"\n')
    found = dataset_branches(sample, {"mnist", "susy"})
    assert len(found) == 2 and "sample.py:1" in found[0] and "sample.py:3" in found[1], found
