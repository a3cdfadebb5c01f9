"""The similarity report for the course staff: ``similarity.md`` and ``similarity.html`` (plain functions of a report).

One section per assignment graded into the output folder (kept in ``similarity.json``): how many pairs
were compared, each signal's class distribution, and every flagged pair with its evidence: which signals,
their values against the class's median, how far outside the class, and a small plot of the class's
distribution with the pair marked. Evidence to look at, never a penalty.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from autograder.exporters.feedback_html import page
from autograder.exporters.feedback_md import escape
from autograder.results import atomic_write

JSON_FILE, MD_FILE, HTML_FILE = "similarity.json", "similarity.md", "similarity.html"
MAX_PLOTS = 60  # flagged pairs beyond this are listed without their plot


def load(out_dir: Path) -> dict[str, dict]:
    """The reports kept in ``out_dir``, by assignment."""
    try:
        data = json.loads((Path(out_dir) / JSON_FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _value(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def _signal_text(s: dict) -> str:
    if s["name"] in ("same parameters", "same scores"):
        return f"**{s['name']}**: {s['note']}"
    where = (f" (class median {_value(s['median'])}, {s['z']:.1f} robust SDs toward alike)" if s.get("z") is not None
             else " (too few models like these to judge against a class)")
    mark = "**" if s["flagged"] else ""
    note = f"; {s['note']}" if s.get("note") else ""
    return f"{mark}{s['name']}{mark} {_value(s['value'])}{where}{note}"


def render_md(report: dict) -> str:
    """One assignment's section of similarity.md."""
    lines = [f"# {report['assignment']}: similar models", "",
             f"{report['pairs']:,} pair(s) of models of {report['students']} student(s) compared; "
             f"{len(report['flagged'])} flagged (a signal at least {report['z_flag']:g} robust standard deviations "
             "toward alike from the class's median, and at least half the way to identical; or equal parameters or scores). "
             "Evidence for the staff to look at, never a "
             "penalty: the notebooks fix a SEED, so students who run the same code unchanged on the same platform "
             "can hand in the same model honestly.", ""]
    for model, m in report["models"].items():
        for s in m["signals"]:
            if "median" in s:
                judged = "" if s.get("judged") else " (too few pairs to judge against the class)"
                shapes = f", models of shapes {s['shapes']}" if s.get("shapes") else ""
                lines.append(f"- {model}, {s['signal']}: {s['pairs']} pair(s){shapes}, class median {s['median']:.3f}{judged}")
    lines.append("")
    for pair in report["flagged"]:
        a, b = (escape(s) for s in pair["students"])
        lines.append(f"## {a} and {b} ({escape(pair['model'])})")
        lines += [f"- {_signal_text(s)}" for s in pair["signals"]] + [""]
    return "\n".join(lines) + "\n"


def _plot(report: dict, pair: dict) -> str | None:
    """A PNG (base64) of the class's distribution of the pair's strongest judged signal, the pair marked."""
    signal = max((s for s in pair["signals"] if s["flagged"] and s.get("z") is not None), key=lambda s: s["z"],
                 default=None)
    if signal is None:
        return None
    summary = next((s for s in report["models"].get(pair["model"], {}).get("signals", [])
                    if s["signal"] == signal["name"] and s.get("values")), None)
    if summary is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 1.8), dpi=80)
    ax.hist(summary["values"], bins=40, color="#9db4d0")
    ax.axvline(signal["value"], color="#c0392b", linewidth=2)
    ax.set_xlabel(f"{signal['name']} (all pairs; this pair in red)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_yticks([])
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def render_html(reports: dict[str, dict]) -> str:
    """similarity.html: every assignment's section, each flagged pair with its plot."""
    parts = []
    plots = 0
    for name, report in sorted(reports.items()):
        md = render_md(report)
        parts.append(f"<section><h1>{html.escape(name)}: similar models</h1>")
        intro = md.split("\n\n")[1]
        parts.append(f"<p>{html.escape(intro)}</p>")
        if not report["flagged"]:
            parts.append("<p>No pair is flagged.</p>")
        for pair in report["flagged"]:
            a, b = (html.escape(s) for s in pair["students"])
            parts.append(f"<h2>{a} and {b} <small>({html.escape(pair['model'])})</small></h2><ul>")
            for s in pair["signals"]:
                text = html.escape(_signal_text(s).replace("**", ""))
                parts.append(f"<li{' class=flag' if s['flagged'] else ''}>{text}</li>")
            parts.append("</ul>")
            png = _plot(report, pair) if plots < MAX_PLOTS else None
            if png:
                plots += 1
                parts.append(f'<img alt="the class\'s distribution, this pair marked" src="data:image/png;base64,{png}">')
        parts.append("</section>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}li.flag{font-weight:bold}"
             "small{color:#666;font-weight:normal}")
    return page("Similar models", "".join(parts), style)


def write(report: dict, out_dir: Path) -> Path:
    """Keep ``report`` (one assignment's) in ``out_dir/similarity.json`` and write similarity.md and .html from
    every assignment's; the path of the html page."""
    out_dir = Path(out_dir)
    reports = load(out_dir)
    reports[report["assignment"]] = report
    atomic_write(out_dir / JSON_FILE, json.dumps(reports, indent=1, sort_keys=True))
    atomic_write(out_dir / MD_FILE, "\n".join(render_md(r) for _, r in sorted(reports.items())))
    atomic_write(out_dir / HTML_FILE, render_html(reports))
    return out_dir / HTML_FILE
