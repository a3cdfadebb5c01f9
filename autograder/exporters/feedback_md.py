"""A short Markdown feedback file per student (the HTML page has the plots)."""

from __future__ import annotations

import re
from pathlib import Path

from autograder.results import StudentResult, atomic_write

FEEDBACK_FILE = "feedback.md"


def escape(text: str) -> str:
    """``text`` as literal Markdown inline text (no links, images, HTML or emphasis)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~&])", r"\\\1", " ".join(str(text).split()))


def fenced(text: str, indent: str = "") -> list[str]:
    """``text`` as a fenced code block: shown verbatim, whatever it contains (student error text)."""
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return [indent + fence + "text", *(indent + line for line in text.splitlines()), indent + fence]


def render(result: StudentResult) -> str:
    """Score, notes, one line per check; text that may come from the student is fenced."""
    lines = [f"# {result.assignment}: {result.score:g} / {result.max_score:g}", ""]
    if result.output:
        lines += [*fenced(result.output), ""]
    for f in result.flags:
        lines += [f"Flagged for review: {escape(f['reason'])}", ""]
    for c in result.checks:
        mark = "PASS" if c.status == "passed" else ("PART" if c.score > 0 else "FAIL")
        lines.append(f"- [{mark}] {c.title}: {c.score:g}/{c.points:g}")  # titles are course facts
        if c.status != "passed" or c.output != "passed":
            lines += fenced(c.output, "  ")
    return "\n".join(lines) + "\n"


def write(result: StudentResult, folder: Path) -> Path:
    path = Path(folder) / FEEDBACK_FILE
    atomic_write(path, render(result))
    return path
