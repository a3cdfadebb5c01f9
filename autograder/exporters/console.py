"""The student x check table printed after grading."""

from __future__ import annotations

from autograder.results import StudentResult


def table(results: list[StudentResult]) -> str:
    """A student x check table of scores (one assignment)."""
    if not results:
        return "(no submissions)"
    checks = [c.id for c in results[0].checks]
    head = ["student"] + checks + ["total"]
    rows = [[r.student[:40]] + [f"{c.score:g}/{c.points:g}" for c in r.checks] + [f"{r.score:g}/{r.max_score:g}"]
            for r in results]
    widths = [max(len(str(row[i])) for row in [head] + rows) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*(cell.replace("\n", " ") for cell in row)) for row in rows]
    return "\n".join(lines)
