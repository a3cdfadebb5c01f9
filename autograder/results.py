"""What grading one submission produces, and how it is stored.

A :class:`StudentResult` is the graded outcome of one student's submission of one assignment: one
:class:`CheckResult` per configured check, notes for the student, and the aggregates the feedback
page draws (confusion matrix, misclassified digits, ROC curves). It is stored as
``OUT/<student>/<assignment>/grading.json`` (the *record*), written atomically and last, so a record
that exists is complete. Every exporter (CSV, console table, Gradescope, gradebook, feedback
pages, summary) is a plain function of these results.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

RECORD_FILE = "grading.json"
RECORD_FORMAT = 1


@dataclass
class CheckResult:
    """The outcome of one graded check."""

    id: str
    title: str
    points: float
    score: float
    output: str
    status: str  # "passed" or "failed"


@dataclass
class StudentResult:
    """The graded outcome for one student and one assignment."""

    student: str
    assignment: str
    checks: list[CheckResult]
    output: str  # notes shown to the student above the checks
    seconds: float
    extra: dict = field(default_factory=dict)  # profile, execution, models, limits hit
    details: dict = field(default_factory=dict)  # per model: aggregates for the feedback page
    flags: list[dict] = field(default_factory=list)  # {"check": id, "reason": text}: needs a human look
    fingerprint: str = ""  # what was graded (see autograder.batch.fingerprint)
    # What the class's similarity report keeps of the models ({"<model>/<what>": array}); written beside the
    # record as evidence.npz (exporters.student_folder), not part of it.
    evidence: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def internal_errors(self) -> list[str]:
        """The checks the grader itself could not run (its fault, not the submission's)."""
        return list(self.extra.get("internal_errors", []))

    @property
    def score(self) -> float:
        return round(sum(c.score for c in self.checks), 4)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    @property
    def limits_hit(self) -> list[str]:
        return list(self.extra.get("limits_hit", []))

    def to_dict(self) -> dict:
        """The record: JSON-serializable, and everything an exporter needs."""
        import course_config

        a = course_config.ASSIGNMENTS.get(self.assignment)
        data = asdict(self)
        del data["evidence"]  # arrays, kept beside the record (evidence.npz)
        data.update({
            "format": RECORD_FORMAT,
            "title": a.title if a else self.assignment,
            "score": self.score,
            "max_score": self.max_score,
            "profile": self.extra.get("profile"),
            "executed": bool(self.extra.get("executed")),
        })
        return data

    @classmethod
    def from_dict(cls, data: dict) -> StudentResult:
        return cls(
            student=data["student"],
            assignment=data["assignment"],
            checks=[CheckResult(**c) for c in data["checks"]],
            output=data.get("output", ""),
            seconds=float(data.get("seconds", 0.0)),
            extra=data.get("extra", {}),
            details=data.get("details", {}),
            flags=data.get("flags", []),
            fingerprint=data.get("fingerprint", ""),
        )


# How many of a model's most confident mistakes a result records (and its feedback page shows).
MAX_MISCLASSIFIED = 12


def failed_result(student: str, assignment, message: str, seconds: float = 0.0, *, internal: bool = False) -> StudentResult:
    """Zero on every check of ``assignment`` (a course_config.Assignment), each saying ``message``;
    ``internal``: the grader failed, not the submission (graded again on the next run)."""
    checks = [CheckResult(c.id, c.title, c.points, 0.0, message, "failed") for c in assignment.checks]
    extra = {"internal_errors": [c.id for c in assignment.checks]} if internal else {}
    return StudentResult(student, assignment.name, checks, message, seconds, extra)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_record(result: StudentResult, folder: Path, record: dict | None = None) -> Path:
    """Commit ``result`` as ``folder/grading.json`` (atomically); ``record``: its ``to_dict()``, if made already."""
    path = Path(folder) / RECORD_FILE
    atomic_write(path, json.dumps(record or result.to_dict(), indent=1) + "\n")
    return path


def load_record(folder: Path) -> StudentResult | None:
    """The committed result in ``folder``, or None if there is none (or it is unreadable)."""
    path = Path(folder) / RECORD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != RECORD_FORMAT:
            return None
        return StudentResult.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_records(out_dir: Path, assignment: str | None = None) -> list[StudentResult]:
    """Every committed result under ``out_dir`` (``<student>/<assignment>/grading.json``), sorted."""
    results = []
    for path in sorted(Path(out_dir).glob(f"*/{assignment or '*'}/{RECORD_FILE}")):
        r = load_record(path.parent)
        if r is not None:
            results.append(r)
    return sorted(results, key=lambda r: (r.assignment, r.student))
