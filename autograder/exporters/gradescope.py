"""Gradescope's ``results.json`` for one result (the autograder output contract)."""

from __future__ import annotations

import json
from pathlib import Path

from autograder.results import StudentResult, atomic_write

RESULTS_FILE = "results.json"


def results_json(result: StudentResult) -> dict:
    """``result`` in Gradescope's format: score, max_score, one test per check, output."""
    output = result.output or f"{result.score:g} / {result.max_score:g}"
    if result.flags:
        output += "\n\nFlagged for review by the course staff: " + "; ".join(f["reason"] for f in result.flags)
    return {
        "score": result.score,
        "max_score": result.max_score,
        "output": output,
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
        # The hidden-test figures (Gradescope shows them on its leaderboard, under the student's pseudonym).
        **({"leaderboard": result.extra["leaderboard"]} if result.extra.get("leaderboard") else {}),
    }


def failure_json(message: str) -> dict:
    """A valid results.json for when grading itself failed: a visible zero that says so."""
    return {
        "score": 0.0,
        "output": message,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [{"name": "autograder failed", "score": 0.0, "max_score": 0.0, "status": "failed",
                   "output": message, "visibility": "visible"}],
    }


def write(result: StudentResult, folder: Path) -> Path:
    path = Path(folder) / RESULTS_FILE
    atomic_write(path, json.dumps(results_json(result), indent=2) + "\n")
    return path
