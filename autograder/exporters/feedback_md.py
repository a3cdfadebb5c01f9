"""A short Markdown feedback file per student (the HTML page has the plots)."""

from __future__ import annotations

from pathlib import Path

from autograder.results import StudentResult, atomic_write

FEEDBACK_FILE = "feedback.md"


def render(result: StudentResult) -> str:
    """Score, notes, one line per check."""
    lines = [f"# {result.assignment}: {result.score:g} / {result.max_score:g}", ""]
    if result.output:
        lines += [result.output, ""]
    for f in result.flags:
        lines += [f"Flagged for review: {f['reason']}", ""]
    for c in result.checks:
        mark = "PASS" if c.status == "passed" else ("PART" if c.score > 0 else "FAIL")
        lines.append(f"- [{mark}] {c.title}: {c.score:g}/{c.points:g}")
        if c.status != "passed" or c.output != "passed":
            lines += [f"  {line}" for line in c.output.splitlines()]
    return "\n".join(lines) + "\n"


def write(result: StudentResult, folder: Path) -> Path:
    path = Path(folder) / FEEDBACK_FILE
    atomic_write(path, render(result))
    return path
