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
