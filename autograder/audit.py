"""Audit saved-model grades: re-execute a seeded sample of notebooks, and every flagged one, and compare.

Saved-model grading cannot see how a model was trained. The audit re-runs the student's own notebook
in the sandbox (under an audit profile, ``quick`` by default: sized for a CPU) and measures what that
run's model scores. A saved model that scores more than the assignment's measured gap
(``course_config.Assignment.audit_gaps``) above its own notebook's re-execution is flagged for review,
and so is a notebook that no longer produces a model. Flags are added to the students' records, so
``grades.csv``, ``summary.md``, the feedback pages and the gradebook all show them; scores are not
changed. The re-executions are graded by the batch into ``OUT/audit/`` (skip-if-done applies there too).
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import course_config
from autograder import batch, worker
from autograder.exporters import grades_csv, summary
from autograder.exporters.feedback_md import escape
from autograder.results import StudentResult, atomic_write, load_records

AUDIT_DIR = "audit"
AUDIT_REPORT = "audit.md"
FLAG_PREFIX = "audit: "


@dataclass
class AuditRow:
    student: str
    reason: str  # why it was audited: "sample" or "flagged"
    saved: dict[str, float]  # metric per check, saved model, on the audit profile's test data
    executed: dict[str, float]  # the same, for the model the re-executed notebook saved
    flags: list[dict] = field(default_factory=list)


def choose(students: list[str], flagged: set[str], fraction: float, seed: int) -> dict[str, str]:
    """A seeded random sample of ``fraction`` of ``students`` (at least one when fraction > 0), plus ``flagged``."""
    if not 0 <= fraction <= 1:
        raise ValueError("--audit takes a fraction between 0 and 1 (e.g. 0.1 for one student in ten)")
    pool = sorted(students)
    k = min(len(pool), math.ceil(fraction * len(pool))) if fraction > 0 else 0
    chosen = {s: "sample" for s in random.Random(seed).sample(pool, k)}
    chosen.update({s: "flagged" for s in sorted(flagged) if s in pool})
    return dict(sorted(chosen.items()))


def compare(assignment: course_config.Assignment, profile: str, saved: StudentResult,
            executed: StudentResult) -> list[dict]:
    """Audit flags for one student: a metric that re-execution falls short of, or no model at all."""
    gaps = assignment.audit_gaps[profile]
    flags = []
    saved_metrics = saved.extra.get("metrics", {})
    executed_metrics = executed.extra.get("metrics", {})
    for check_id, value in saved_metrics.items():
        if check_id not in gaps:
            continue
        gap, again = gaps[check_id], executed_metrics.get(check_id)
        if again is None:
            why = executed.output.splitlines()[0] if executed.output else "no model was saved"
            flags.append({"check": check_id, "reason": f"{FLAG_PREFIX}re-running the notebook (profile {profile}) "
                                                       f"did not produce a model to compare ({why[:200]})"})
        elif value - again > gap:
            flags.append({"check": check_id, "reason": f"{FLAG_PREFIX}{check_id} {value:.4f} with the saved model, "
                                                       f"{again:.4f} when the notebook is re-run (profile {profile}); "
                                                       f"more than the {gap:.3f} honest solutions differ by. Was the "
                                                       "saved model trained as the notebook says?"})
    return flags


def audit(assignment_name: str, submitted_dir: Path, out_dir: Path, results: list[StudentResult], *,
          fraction: float, seed: int = 0, profile_name: str = "quick", backend: str | None = None,
          workers: int | None = None, cluster: str | None = None, insecure: bool = False, gpus_per_task: int = 0,
          log=sys.stderr) -> list[AuditRow]:
    """Audit ``results`` (saved-model grades in ``out_dir``); add flags to their records and exports.

    ``cluster`` and ``gpus_per_task``: the re-executions run on that Dask cluster, each asking for that
    many GPUs, as ``autograder grade --cluster`` runs a batch (the saved models' scores, on CPUs there)."""
    a = course_config.assignment(assignment_name)
    if profile_name not in a.audit_gaps:
        raise ValueError(f"{a.name} has no audit gap for profile {profile_name!r} in course_config "
                         f"(audit_gaps: {', '.join(a.audit_gaps) or 'none'}); audits need a measured gap")
    saved_mode = [r for r in results if not r.extra.get("executed")]
    flagged = {r.student for r in saved_mode if any(not f.get("reason", "").startswith(FLAG_PREFIX) for f in r.flags)}
    chosen = choose([r.student for r in saved_mode], flagged, fraction, seed)
    rows: list[AuditRow] = []
    if not chosen:
        return rows
    audit_dir = Path(out_dir) / AUDIT_DIR
    print(f"audit: re-running {len(chosen)} notebook(s) of {len(saved_mode)} (seed {seed}, profile {profile_name})",
          file=log, flush=True)
    options = {"backend": backend, "workers": workers, "profile_name": profile_name, "cluster": cluster,
               "insecure": insecure, "log": log}
    (executed,) = batch.grade_assignments({a.name: list(chosen)}, submitted_dir, audit_dir / "executed",
                                          execute=True, gpus_per_task=gpus_per_task, **options)
    by_student = {r.student: r for r in results}
    if profile_name == by_student[next(iter(chosen))].extra.get("profile"):
        saved_here = by_student
    else:  # score the saved models on the audit profile's test data, so both sides are measured alike
        (report,) = batch.grade_assignments({a.name: list(chosen)}, submitted_dir, audit_dir / f"saved-{profile_name}",
                                            **options)
        saved_here = {r.student: r for r in report.results}
    re_executed = {r.student: r for r in executed.results}
    for student, reason in chosen.items():
        row = AuditRow(student, reason, saved_here[student].extra.get("metrics", {}),
                       re_executed[student].extra.get("metrics", {}))
        row.flags = compare(a, profile_name, saved_here[student], re_executed[student])
        rows.append(row)
        record = by_student[student]
        record.flags = [f for f in record.flags if not f.get("reason", "").startswith(FLAG_PREFIX)] + row.flags
        worker.write_student_files(record, Path(out_dir) / student / a.name)
    everyone = sorted(load_records(out_dir, a.name), key=lambda r: r.student)
    grades_csv.write(everyone, Path(out_dir) / grades_csv.GRADES_FILE)
    summary.write(everyone, a.name, out_dir)
    text = render(a, profile_name, seed, fraction, rows)
    atomic_write(audit_dir / AUDIT_REPORT, text)
    for line in text.splitlines()[2:]:
        print(line, file=log)
    return rows


def render(a: course_config.Assignment, profile: str, seed: int, fraction: float, rows: list[AuditRow]) -> str:
    """The audit as Markdown: one row per audited student and metric."""
    lines = [f"# Audit of {a.name}: {len(rows)} notebook(s) re-run (profile {profile}, fraction {fraction:g}, "
             f"seed {seed}; allowed gaps: "
             + ", ".join(f"{check_id} {gap:.3f}" for check_id, gap in a.audit_gaps[profile].items()) + ")", "",
             "| student | why | check | saved model | re-run notebook | verdict |", "|---|---|---|---|---|---|"]
    for row in rows:
        for check_id, value in row.saved.items() or {"-": float("nan")}.items():
            again = row.executed.get(check_id)
            bad = any(f["check"] == check_id for f in row.flags)
            verdict = "FLAGGED" if bad else "ok" if check_id in a.audit_gaps[profile] or check_id == "-" else "not audited"
            lines.append(f"| {escape(row.student)} | {row.reason} | {check_id} | {value:.4f} | "
                         f"{'-' if again is None else f'{again:.4f}'} | {verdict} |")
    return "\n".join(lines) + "\n"
