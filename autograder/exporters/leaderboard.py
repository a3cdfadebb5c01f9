"""The class leaderboard an instructor can publish: rank, pseudonym and hidden-test figures (a plain function of results).

Each student appears under a pseudonym: the one the course chose (a CSV of ``student,pseudonym``), or one
derived from the student's id with a key kept in the output folder (``.pseudonym-key``, readable by its
owner only), so that the same student keeps the same name from run to run and nobody can go back from the
name to the id without the key. No student id is on the page. The figures are those of the graded
checks with thresholds (accuracy, moved-digits accuracy, ROC AUC, ...), as Gradescope's leaderboard shows
them; the table is ranked by the check worth most points, with the reference solution's line for
comparison. A model flagged for review (its figure above the plausibility ceiling of its kind, or in a
pair of similar models) is listed below the ranked ones, marked, without a rank.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import html
import json
import os
import secrets
from pathlib import Path

from autograder.exporters.feedback_html import page
from autograder.results import StudentResult, atomic_write

HTML_FILE = "leaderboard.html"
KEY_FILE = ".pseudonym-key"
ADJECTIVES = ("Agile", "Bold", "Bright", "Calm", "Clever", "Cosmic", "Curious", "Daring", "Eager", "Fleet", "Gentle",
              "Keen", "Lively", "Lucid", "Nimble", "Patient", "Quick", "Quiet", "Radiant", "Serene", "Sharp", "Steady",
              "Swift", "Tidy", "Vivid", "Warm", "Wise", "Witty", "Zesty", "Brave", "Merry", "Noble")
PARTICLES = ("Boson", "Gluon", "Graviton", "Hadron", "Kaon", "Lepton", "Muon", "Neutrino", "Neutron", "Photon", "Pion",
             "Positron", "Proton", "Quark", "Tau", "Axion", "Baryon", "Fermion", "Meson", "Higgs", "Electron",
             "Neutralino", "Gravitino", "Squark", "Slepton", "Chargino", "Phonon", "Magnon", "Polaron", "Exciton",
             "Anyon", "Soliton")


def _key(out_dir: Path) -> bytes:
    """The output folder's pseudonym key (made on first use, readable by its owner only)."""
    path = Path(out_dir) / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def derived_pseudonym(key: bytes, student: str, extra: int = 0) -> str:
    """A pseudonym such as "Curious Muon 17", from the student's id and the key."""
    digest = hmac.new(key, f"{student}\0{extra}".encode(), hashlib.sha256).digest()
    return f"{ADJECTIVES[digest[0] % len(ADJECTIVES)]} {PARTICLES[digest[1] % len(PARTICLES)]} {digest[2] % 100:02d}"


def read_chosen(path: Path) -> dict[str, str]:
    """The pseudonyms a course chose: a CSV of ``student,pseudonym`` rows (a header row is skipped)."""
    chosen = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 2 and row[0].strip() and row[0].strip().lower() != "student":
                chosen[row[0].strip()] = row[1].strip()
    return chosen


def pseudonyms(students: list[str], out_dir: Path, chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Every student's pseudonym: the course's choice, else derived; all different."""
    chosen = chosen or {}
    key = None
    names: dict[str, str] = {}
    taken = set(chosen.values())
    for student in sorted(students):
        if student in chosen:
            names[student] = chosen[student]
            continue
        key = key or _key(out_dir)
        extra = 0
        name = derived_pseudonym(key, student)
        while name in taken:
            extra += 1
            name = derived_pseudonym(key, student, extra)
        names[student] = name
        taken.add(name)
    return names


def entries(result: StudentResult) -> list[dict]:
    """The figures a result puts on the leaderboard (Gradescope's ``leaderboard`` entries), ranked one first."""
    return [e for e in result.extra.get("leaderboard", []) if isinstance(e, dict)]


def rows(results: list[StudentResult], names: dict[str, str], flagged: dict[str, str]) -> tuple[list[str], list[dict]]:
    """The table's columns (figures) and rows: ranked rows first (best first), then the flagged ones, marked."""
    columns: list[str] = []
    for r in results:
        for e in entries(r):
            if e.get("name") not in columns:
                columns.append(e.get("name"))
    table = []
    for r in results:
        figures = {e["name"]: e.get("value") for e in entries(r)}
        order = next((e.get("order", "desc") for e in entries(r)), "desc")
        if not figures or columns[0] not in figures or figures[columns[0]] is None:
            continue
        review = flagged.get(r.student) or "; ".join(f.get("reason", "") for f in r.flags if isinstance(f, dict))
        table.append({"name": names[r.student], "figures": figures, "review": review, "order": order})
    primary = columns[0] if columns else None

    def best_first(row):
        value = row["figures"][primary]
        return -value if row["order"] == "desc" else value

    ranked = sorted((row for row in table if not row["review"]), key=lambda row: (best_first(row), row["name"]))
    held = sorted((row for row in table if row["review"]), key=lambda row: (best_first(row), row["name"]))
    rank = 0
    for i, row in enumerate(ranked):
        if i == 0 or best_first(row) != best_first(ranked[i - 1]):
            rank = i + 1
        row["rank"] = rank
    for row in held:
        row["rank"] = None
    return columns, ranked + held


def render_section(assignment: str, columns: list[str], table: list[dict], reference: dict[str, float]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    if reference:
        cells = "".join(f"<td>{reference[c]:.4f}</td>" if c in reference else "<td></td>" for c in columns)
        body.append(f'<tr class="reference"><td></td><td>reference solution</td>{cells}</tr>')
    for row in table:
        cells = "".join(f"<td>{row['figures'][c]:.4f}</td>" if row["figures"].get(c) is not None else "<td></td>"
                        for c in columns)
        rank = "" if row["rank"] is None else str(row["rank"])
        mark = ' class="review" title="under review by the course staff"' if row["review"] else ""
        note = " (under review)" if row["review"] else ""
        body.append(f"<tr{mark}><td>{rank}</td><td>{html.escape(row['name'])}{note}</td>{cells}</tr>")
    return (f"<section><h1>{html.escape(assignment)}</h1><table><thead><tr><th>rank</th><th>name</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></section>")


def render(sections: dict[str, str]) -> str:
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}table{border-collapse:collapse}"
             "td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:right}"
             "td:nth-child(2),th:nth-child(2){text-align:left}"
             "tr.reference{font-style:italic;background:#f3f6fa}tr.review{color:#888}")
    intro = ("<p>Each student's figures on the hidden test data, under a pseudonym. Models under review by the "
             "course staff are listed last, without a rank.</p>")
    return page("Leaderboard", intro + "".join(s for _, s in sorted(sections.items())), style)


def write(results: list[StudentResult], assignment: str, out_dir: Path, *, reference: dict[str, float] | None = None,
          flagged: dict[str, str] | None = None, chosen: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/leaderboard.html`` with ``assignment``'s section (those of other assignments graded into
    ``out_dir`` stay); ``flagged``: {student: why} of models under review; ``chosen``: the course's pseudonyms."""
    out_dir = Path(out_dir)
    names = pseudonyms([r.student for r in results], out_dir, chosen)
    columns, table = rows(results, names, flagged or {})
    kept = out_dir / ".leaderboard.json"
    try:
        sections = json.loads(kept.read_text())
    except (OSError, ValueError):
        sections = {}
    sections[assignment] = render_section(assignment, columns, table, reference or {})
    atomic_write(kept, json.dumps(sections))
    atomic_write(out_dir / HTML_FILE, render(sections))
    return out_dir / HTML_FILE
