"""Per-assignment summary of a graded class: mean, median, a histogram, the checks failed most often."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from autograder.exporters.feedback_md import escape
from autograder.results import StudentResult, atomic_write

SUMMARY_FILE = "summary.md"
BINS = 10


def histogram(scores: list[float], max_score: float, bins: int = BINS, width: int = 40) -> list[str]:
    """Text histogram of ``scores`` in ``bins`` equal bins from 0 to ``max_score`` (last bin closed)."""
    counts = [0] * bins
    for s in scores:
        i = min(bins - 1, int(bins * s / max_score)) if max_score > 0 else 0
        counts[max(0, i)] += 1
    top = max(counts) or 1
    lines = []
    for i, n in enumerate(counts):
        lo, hi = max_score * i / bins, max_score * (i + 1) / bins
        bracket = "]" if i == bins - 1 else ")"
        lines.append(f"[{lo:5.2f}, {hi:5.2f}{bracket} {'#' * round(width * n / top):<{width}} {n}")
    return lines


def stats(results: list[StudentResult]) -> dict:
    """Numbers of the summary for one assignment's results."""
    scores = [r.score for r in results]
    failed = Counter(c.id for r in results for c in r.checks if c.score < c.points)
    limits = Counter(limit for r in results for limit in r.limits_hit)
    return {
        "graded": len(results),
        "max_score": results[0].max_score if results else 0.0,
        "mean": statistics.mean(scores) if scores else 0.0,
        "median": statistics.median(scores) if scores else 0.0,
        "full_marks": sum(1 for r in results if r.score == r.max_score),
        "zero": sum(1 for r in results if r.score == 0),
        "failed_checks": failed.most_common(),
        "limits_hit": limits.most_common(),
        "flagged": sum(1 for r in results if r.flags),
        "internal_errors": [r.student for r in results if r.internal_errors],
    }


def render(results: list[StudentResult], assignment: str, *, run: dict | None = None) -> str:
    """Markdown summary of ``results`` (one assignment); ``run`` adds this run's counts and wall time."""
    s = stats(results)
    titles = {c.id: c.title for r in results[:1] for c in r.checks}
    lines = [f"# {assignment}: summary of {s['graded']} graded submission(s)", ""]
    if run:
        lines += [f"This run: {run.get('graded', 0)} graded, {run.get('skipped', 0)} unchanged and skipped, "
                  f"wall time {run.get('wall_s', 0):.1f} s "
                  + (f"with {run['workers']} worker(s)." if run.get("workers", 1) else "(no workers needed)."), ""]
        # The grader's own words (no student text), so not escaped.
        lines += [f"**Warning:** {w}." for w in run.get("warnings", [])] + ([""] if run.get("warnings") else [])
        if run.get("similar") is not None:
            lines += [f"Similar models: {run['similar']} flagged pair(s) for the staff to look at (similarity.md; "
                      "evidence, never a penalty). Leaderboard: leaderboard.html.", ""]
    if not results:
        return "\n".join(lines + ["(no submissions)"]) + "\n"
    if s["internal_errors"]:
        lines += [f"**Internal grader errors: {len(s['internal_errors'])}** ({escape(', '.join(s['internal_errors'][:20]))}): "
                  "the grader, not the submission, failed; these results are not kept as done and the next run "
                  "grades them again.", ""]
    lines += [
        f"- mean {s['mean']:.2f} / {s['max_score']:g}, median {s['median']:.2f}",
        f"- full marks: {s['full_marks']}, zero: {s['zero']}, flagged for review: {s['flagged']}",
        "",
        "Scores:",
        "",
        "```",
        *histogram([r.score for r in results], s["max_score"]),
        "```",
        "",
        "Checks failed most often (students below full points):",
        "",
    ]
    if s["failed_checks"]:
        lines += ["| check | students | |", "|---|---|---|"]
        lines += [f"| {cid} | {n} | {titles.get(cid, '')} |" for cid, n in s["failed_checks"]]
    else:
        lines.append("none: every check passed for everyone")
    if s["limits_hit"]:
        lines += ["", "Limits hit: " + ", ".join(f"{name} ({n})" for name, n in s["limits_hit"])]
    flagged = [(r.student, f) for r in results for f in r.flags if isinstance(f, dict)]
    if flagged:
        lines += ["", "Flagged for review (the score stands until an instructor has looked):", ""]
        lines += [f"- {escape(student)}: {escape(f.get('reason', ''))}" for student, f in flagged]
    return "\n".join(lines) + "\n"


def write(results: list[StudentResult], assignment: str, out_dir: Path, *, run: dict | None = None) -> Path:
    """Write ``out_dir/summary.md`` (one section per assignment graded into ``out_dir``)."""
    path = Path(out_dir) / SUMMARY_FILE
    sections = {}
    if path.exists():
        for block in ("\n" + path.read_text(encoding="utf-8")).split("\n<!-- assignment: ")[1:]:
            name, _, body = block.partition(" -->\n")
            sections[name] = body
    sections[assignment] = render(results, assignment, run=run)
    text = "".join(f"\n<!-- assignment: {name} -->\n{body}" for name, body in sorted(sections.items()))
    atomic_write(path, text.lstrip("\n"))
    return path
