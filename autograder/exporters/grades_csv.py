"""``grades.csv``: one row per (student, assignment), one column per check."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder.results import StudentResult, atomic_write

GRADES_FILE = "grades.csv"
BASE_COLUMNS = ["student", "assignment", "score", "max_score", "flagged"]
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: str) -> str:
    """``value`` as text a spreadsheet shows, never runs: a leading formula character gets a quote."""
    value = str(value)
    if value.startswith(_FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def render(results: list[StudentResult], keep: str | None = None) -> str:
    """The CSV text for ``results``; rows of other assignments in ``keep`` (old CSV text) are kept."""
    rows: dict[tuple[str, str], dict] = {}
    columns = list(BASE_COLUMNS)
    if keep:
        reader = csv.DictReader(io.StringIO(keep))
        for name in reader.fieldnames or []:
            if name not in columns:
                columns.append(name)
        mine = {r.assignment for r in results}
        for row in reader:
            if row.get("assignment") not in mine:
                rows[(row.get("student", ""), row.get("assignment", ""))] = row
    for r in results:
        row = {"student": safe_cell(r.student), "assignment": r.assignment, "score": f"{r.score:g}",
               "max_score": f"{r.max_score:g}", "flagged": "; ".join(safe_cell(f["reason"]) for f in r.flags)}
        for c in r.checks:
            row[c.id] = f"{c.score:g}"
            if c.id not in columns:
                columns.append(c.id)
        rows[(r.student, r.assignment)] = row
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow(rows[key])
    return out.getvalue()


def write(results: list[StudentResult], path: Path) -> Path:
    """Rewrite ``path`` from ``results`` (atomically), keeping rows of other assignments."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    atomic_write(path, render(results, keep=old))
    return path
