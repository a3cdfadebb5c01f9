"""The class as a whole, after a batch: similar models found with evidence, and the leaderboard.

Both read only what the batch committed (each student's record and the evidence kept beside it, see
:mod:`autograder.similarity`), so they cost seconds, and late submissions or a rerun cost nothing
extra: ``autograder grade`` writes them after every run, ``autograder class ASSIGNMENT --out OUT`` again
on demand (with the course's own pseudonyms, ``--pseudonyms``).
"""

from __future__ import annotations

import json
from pathlib import Path

import course_config
from autograder import similarity
from autograder.exporters import leaderboard, similarity_report
from autograder.results import load_records

CALIBRATION = course_config.COURSE_DIR / "docs" / "calibration.json"


def reference_figures(assignment: course_config.Assignment, profile: str) -> dict[str, float]:
    """The reference solution's mean figure per metric check (docs/calibration.json), by the check's title."""
    try:
        summary = json.loads(CALIBRATION.read_text()).get("summary", [])
    except (OSError, ValueError):
        return {}
    titles = {c.id: c.title for c in assignment.checks}
    return {titles[row["check"]]: float(row["mean"]) for row in summary if isinstance(row, dict)
            and row.get("assignment") == assignment.name and row.get("profile") == profile
            and row.get("check") in titles and row.get("mean") is not None}


def report(assignment: course_config.Assignment, profile: course_config.Profile, out_dir: Path, task, *,
           chosen: dict[str, str] | None = None, results: list | None = None) -> dict:
    """Write ``out_dir``'s similarity report and leaderboard for ``assignment`` from its committed results
    (``results``, where the caller holds them already; ``task``: the hidden test data they were graded on, for
    the labels); the similarity report as plain values."""
    if results is None:
        results = load_records(out_dir, assignment.name)
    results = sorted(results, key=lambda r: r.student)
    found = similarity.analyse(out_dir, assignment, [r.student for r in results], task.labels,
                               task.metric_spec.outputs)
    similarity_report.write(found, out_dir)
    pairs_of: dict[str, list[str]] = {}
    for pair in found["flagged"]:
        a, b = pair["students"]
        pairs_of.setdefault(a, []).append(b)
        pairs_of.setdefault(b, []).append(a)
    flagged = {student: "its model is similar to another student's (similarity report)" for student in pairs_of}
    leaderboard.write(results, assignment.name, out_dir, reference=reference_figures(assignment, profile.name),
                      flagged=flagged, chosen=chosen)
    return found
