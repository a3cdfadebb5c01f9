"""Write grading results: Gradescope's results.json, a feedback page per student, and grades.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

RESULTS_FILE = "results.json"
FEEDBACK_FILE = "feedback.md"
GRADES_FILE = "grades.csv"
BASE_COLUMNS = ["student", "assignment", "score", "max_score"]


def gradescope(result) -> dict:
    """``result`` in Gradescope's autograder format (score, max_score, tests, output)."""
    return {
        "score": result.score,
        "max_score": result.max_score,
        "output": result.output or f"{result.score:g} / {result.max_score:g}",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "execution_time": round(result.seconds, 1),
        "tests": [
            {
                "name": c.title,
                "number": str(i),
                "score": c.score,
                "max_score": c.points,
                "status": c.status,
                "output": c.output,
                "visibility": "visible",
                "tags": [c.id],
            }
            for i, c in enumerate(result.checks, start=1)
        ],
        "extra_data": {"student": result.student, "assignment": result.assignment, **result.extra},
    }


def feedback(result) -> str:
    """A short Markdown page for the student: score, notes, one line per check."""
    lines = [f"# {result.assignment}: {result.score:g} / {result.max_score:g}", ""]
    if result.output:
        lines += [result.output, ""]
    for c in result.checks:
        mark = "PASS" if c.status == "passed" else ("PART" if c.score > 0 else "FAIL")
        lines.append(f"- [{mark}] {c.title}: {c.score:g}/{c.points:g}")
        if c.status != "passed" or c.output != "passed":
            lines += [f"  {line}" for line in c.output.splitlines()]
    return "\n".join(lines) + "\n"


def write_student(result, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_FILE).write_text(json.dumps(gradescope(result), indent=2) + "\n")
    (folder / FEEDBACK_FILE).write_text(feedback(result))


def write_grades_csv(results, path: Path) -> None:
    """Write one row per (student, assignment), keeping rows of other assignments already in ``path``."""
    rows: dict[tuple[str, str], dict] = {}
    columns = list(BASE_COLUMNS)
    if path.exists():
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for name in reader.fieldnames or []:
                if name not in columns:
                    columns.append(name)
            for row in reader:
                rows[(row["student"], row["assignment"])] = row
    for r in results:
        row = {"student": r.student, "assignment": r.assignment, "score": f"{r.score:g}", "max_score": f"{r.max_score:g}"}
        for c in r.checks:
            row[c.id] = f"{c.score:g}"
            if c.id not in columns:
                columns.append(c.id)
        rows[(r.student, r.assignment)] = row
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow(rows[key])
