"""The per-student feedback page: ``OUT/<student>/<assignment>/feedback.html``.

One self-contained HTML file (inline CSS, figures as inline ``data:image/png;base64`` images, no
JavaScript, no external resource) rendered from a grading record (``StudentResult.to_dict()``):

- a header with the assignment title, the student and the total score;
- a note when a check was flagged for review, and the grader's notes in a preformatted block;
- one table row per check: points earned, pass / partial / fail, the grader's message;
- per MNIST model: the confusion matrix as a table coloured as a heatmap, the counts in its cells (a
  table, not a figure: crisp, readable aloud, and drawn by the browser instead of costing the grader
  0.24 s of matplotlib per student), and the misclassified test digits (each digit's pixels a small
  PNG, its labels text) (at most 12) with their true and predicted labels; where the model was
  scored on moved digits too, that accuracy and the moved digits it got wrong;
- for the SUSY models: one figure with every model's ROC curve beside the reference solution's
  (dashed, same colour), with the AUCs in the legend and in a small table.

Every string that comes from the record is escaped with ``html.escape(quote=True)``, and the page
carries a Content-Security-Policy that forbids scripts and any request leaving the page, in case an
escape is ever forgotten. Figures only ever contain numbers and our own labels (model names are
used only when they look like identifiers), with TeX and mathtext parsing switched off.

The ROC figure is drawn with matplotlib's Agg canvas on a plain ``Figure`` object, under the settings
in ``_RC`` only: no pyplot, so no global figure registry to leak into and no interactive backend to
switch; nothing is read from disk. The digits are their own pixels, encoded by Pillow.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path

import numpy as np

from autograder.results import MAX_MISCLASSIFIED, atomic_write

FEEDBACK_FILE = "feedback.html"
DPI = 80
MAX_NOTES_CHARS = 20_000  # the notes block; longer output is cut (the full text is in grading.json)
MAX_MESSAGE_CHARS = 4_000  # one check's message
MAX_NAME_CHARS = 300  # a title, a student's name, a file name
MAX_ROC_POINTS = 1_000
MAX_CLASSES = 20

# Only these matplotlib settings apply while a figure is drawn (restored afterwards).
_RC = {
    "text.usetex": False,
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "savefig.dpi": DPI,
    "figure.dpi": DPI,
}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\- ]{1,40}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
 background:#fff;margin:0;line-height:1.45}
main{max-width:58rem;margin:0 auto;padding:1.5rem 1rem 3rem}
h1{font-size:1.6rem;margin:0 0 .3rem}
h1,h2,h3,p,li,td,figcaption{overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:2rem 0 .6rem;padding-bottom:.25rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
.meta{color:#59636e;margin:.2rem 0}
.total{display:inline-block;font-size:1.25rem;font-weight:600;padding:.25rem .7rem;border-radius:.4rem;
 margin:.5rem 0;border:1px solid}
.pass{background:#dafbe1;border-color:#1a7f37}
.partial{background:#fff1cc;border-color:#bf8700}
.fail{background:#ffebe9;border-color:#cf222e}
.flag{background:#fff1cc;border-left:.3rem solid #bf8700;padding:.6rem .9rem;margin:1rem 0}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:.4rem;padding:.6rem .8rem;margin:.3rem 0;
 white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;max-height:30rem;overflow:auto;
 font-size:.85rem}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.msg{overflow-wrap:anywhere;word-break:break-word;white-space:pre-wrap;font-family:ui-monospace,
 "DejaVu Sans Mono",monospace;font-size:.82rem}
tr.pass td.status{background:#dafbe1;color:#116329}
tr.partial td.status{background:#fff1cc;color:#7d4e00}
tr.fail td.status{background:#ffebe9;color:#a40e26}
td.status{font-weight:600;white-space:nowrap}
tfoot td{font-weight:600;background:#f6f8fa}
figure{margin:.8rem 0 1.4rem}
.digits{display:flex;flex-wrap:wrap;gap:.9rem 1.1rem;padding:.6rem;border:1px solid #d0d7de;border-radius:.3rem;
 max-width:42rem}
.digit{width:9rem;text-align:center;font-size:.8rem;line-height:1.25}
.digit span{display:block}
.digit img{display:block;margin:0 auto .25rem;image-rendering:pixelated;
 border:1px solid #c8c8c8;border-radius:0}
table.confusion{width:auto;font-size:.85rem}
table.confusion th,table.confusion td{min-width:3rem;text-align:center;padding:.25rem .3rem;border:1px solid #fff;
 font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}
table.confusion th{background:#fff;color:#424a53;font-weight:600}
table.confusion thead th:first-child{width:auto;white-space:nowrap;font-weight:400}
figure img{max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:.3rem}
figcaption{color:#424a53;font-size:.9rem;margin-top:.3rem;max-width:42rem}
.muted{color:#59636e}
footer{margin-top:2.5rem;color:#59636e;font-size:.8rem}
"""

# No script, no request: only inline styles and data: images may load.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


# ----------------------------------------------------------------------------------------- text


def _text(value, limit: int | None = None) -> str:
    """A record value as clean text: str(), valid Unicode, no control characters, cut to ``limit``."""
    s = "" if value is None else str(value)
    s = s.encode("utf-8", "replace").decode("utf-8")  # lone surrogates
    s = _CONTROL.sub("\N{REPLACEMENT CHARACTER}", s.replace("\r\n", "\n").replace("\r", "\n"))
    if limit is not None and len(s) > limit:
        s = s[:limit] + f"\n… ({len(s) - limit:,} more characters cut)"
    return s


def _e(value, limit: int | None = None) -> str:
    """Escaped for HTML text and attribute values."""
    return html.escape(_text(value, limit), quote=True)


def _num(value) -> float | None:
    """A finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return x if math.isfinite(x) else None


def _fmt(value, spec: str = "g") -> str:
    x = _num(value)
    return "–" if x is None else format(x, spec)


def _safe_name(value, fallback: str) -> str:
    """A model name for a figure: only when it looks like an identifier (the grader's own names)."""
    s = value if isinstance(value, str) else ""
    return s if _SAFE_NAME.fullmatch(s) else fallback


def _status(check: dict) -> str:
    """pass, partial or fail, from the check's status and its (possibly tiered) score."""
    score, points = _num(check.get("score")) or 0.0, _num(check.get("points")) or 0.0
    if points > 0 and 0 < score < points:
        return "partial"
    if check.get("status") == "passed":
        return "pass"
    return "partial" if score > 0 else "fail"


# -------------------------------------------------------------------------------------- figures


def _new_figure(width_in: float, height_in: float):
    """A matplotlib ``Figure`` on an Agg canvas (matplotlib is imported here: only the SUSY page draws)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> tuple[str, int, int]:
    """The figure as a base64 PNG, with its pixel size."""
    buf = io.BytesIO()
    fig.canvas.print_png(buf, metadata={"Software": None})
    width, height = fig.canvas.get_width_height()
    fig.clear()
    return base64.b64encode(buf.getvalue()).decode("ascii"), width, height


def _img(png: tuple[str, int, int], alt: str, css_class: str = "") -> str:
    data, width, height = png
    cls = f' class="{css_class}"' if css_class else ""
    return (f'<img{cls} src="data:image/png;base64,{data}" width="{width}" height="{height}" '
            f'alt="{_e(alt)}">')


def _confusion_matrix(value) -> np.ndarray | None:
    """A square matrix of non-negative counts (2 to MAX_CLASSES classes), or None."""
    try:
        m = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not 2 <= m.shape[0] <= MAX_CLASSES:
        return None
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        return None
    return np.rint(m).astype(np.int64)


def _confusion_colours(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell, the background (RGB in [0, 1]) and its strength: blue diagonal (correct, by the row's share),
    red off-diagonal (darker: more mistakes, scaled to the largest), white where the count is 0."""
    n = confusion.shape[0]
    diagonal = np.eye(n, dtype=bool)
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    off = np.where(diagonal, 0, confusion)
    worst = off.max() if off.size else 0
    strength = np.where(diagonal, 0.25 + 0.75 * share, np.sqrt(off / worst) if worst > 0 else 0.0)
    blue, red = np.array([0.13, 0.40, 0.75]), np.array([0.80, 0.10, 0.12])
    colour = np.where(diagonal[..., None], blue, red)
    rgb = 1.0 - strength[..., None] * (1.0 - colour)
    rgb[(confusion == 0)] = 1.0
    return rgb, strength


def confusion_table(confusion: np.ndarray) -> str:
    """The confusion matrix as a table: a row per true digit, a column per predicted digit, counts in the
    cells, coloured as a heatmap (text a browser draws at once, crisp at any zoom, readable aloud)."""
    rgb, strength = _confusion_colours(confusion)
    n = confusion.shape[0]
    head = "".join(f'<th scope="col">{j}</th>' for j in range(n))
    body = []
    for i in range(n):
        cells = []
        for j in range(n):
            count = int(confusion[i, j])
            ink = "#b0b0b0" if count == 0 else ("#fff" if strength[i, j] > 0.6 else "#1f2328")
            background = "#" + "".join(f"{round(255 * v):02x}" for v in rgb[i, j])
            cells.append(f'<td style="background:{background};color:{ink}">{count}</td>')
        body.append(f'<tr><th scope="row">{i}</th>{"".join(cells)}</tr>')
    return ('<table class="confusion">'
            f'<thead><tr><th scope="col">true \\ predicted</th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _digit(value) -> int | None:
    """A class label (a small non-negative integer), or None."""
    x = _num(value)
    return int(x) if x is not None and x.is_integer() and 0 <= x < 100 else None


def _digits(value) -> list[tuple[np.ndarray, int | None, int | None, float | None]]:
    """The misclassified digits that are well-formed: (28x28 uint8 image, true, predicted, confidence)."""
    out = []
    if not isinstance(value, list):
        return out
    for item in value[:MAX_MISCLASSIFIED]:
        if not isinstance(item, dict):
            continue
        try:
            image = np.asarray(item.get("image"), dtype=float)
        except (TypeError, ValueError):
            continue
        if image.shape != (28, 28) or not np.all(np.isfinite(image)):
            continue
        confidence = _num(item.get("confidence"))
        out.append((np.clip(image, 0, 255).astype(np.uint8), _digit(item.get("true")), _digit(item.get("predicted")),
                    confidence if confidence is not None and 0 <= confidence <= 1 else None))
    return out


DIGIT_SCALE = 4  # a 28x28 digit becomes a 112x112 image, each pixel a 4x4 square (sharp, no resampling)


def digit_png(image: np.ndarray) -> tuple[str, int, int]:
    """One 28x28 digit as a base64 PNG: dark ink on white, as printed, enlarged DIGIT_SCALE times."""
    from PIL import Image

    pixels = np.repeat(np.repeat(255 - image, DIGIT_SCALE, axis=0), DIGIT_SCALE, axis=1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii"), pixels.shape[1], pixels.shape[0]


def digits_grid(digits: list, what: str) -> str:
    """The digits in a grid, each with 'true 4 / predicted 9' and the model's confidence written under it
    (text the browser draws; the images are the digits' pixels only)."""
    tiles = []
    for image, true, predicted, confidence in digits:
        label = f"true {'?' if true is None else true} / predicted {'?' if predicted is None else predicted}"
        sure = "" if confidence is None else f"{100 * confidence:.{1 if confidence >= 0.995 else 0}f} % confident"
        tiles.append('<div class="digit">' + _img(digit_png(image), f"{what}: {label}")
                     + f"<span>{label}</span>" + (f"<span>{sure}</span>" if sure else "") + "</div>")
    return f'<div class="digits">{"".join(tiles)}</div>'


def _curve(fpr, tpr) -> tuple[np.ndarray, np.ndarray] | None:
    """Two equally long, finite ROC coordinate arrays in [0, 1] (at most MAX_ROC_POINTS), or None."""
    try:
        x, y = np.asarray(fpr, dtype=float), np.asarray(tpr, dtype=float)
    except (TypeError, ValueError):
        return None
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        return None
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = np.clip(x[keep], 0, 1), np.clip(y[keep], 0, 1)
    if len(x) < 2:
        return None
    if len(x) > MAX_ROC_POINTS:
        pick = np.linspace(0, len(x) - 1, MAX_ROC_POINTS).round().astype(int)
        x, y = x[pick], y[pick]
    return x, y


def _auc_label(auc) -> str:
    a = _num(auc)
    return "AUC n/a" if a is None else f"AUC {a:.3f}"


def roc_png(curves: list[dict]) -> tuple[str, int, int]:
    """Every model's ROC curve (solid) and its reference (dashed, same colour), AUCs in the legend."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        return _roc_png(curves)


def _roc_png(curves: list[dict]) -> tuple[str, int, int]:
    fig = _new_figure(6.4, 5.0)
    ax = fig.add_axes((0.1, 0.1, 0.87, 0.86))
    ax.plot([0, 1], [0, 1], color="#9a9a9a", linestyle=":", linewidth=1, label="random guess: AUC 0.500")
    for k, c in enumerate(curves):
        colour = f"C{k % 10}"
        x, y = c["curve"]
        ax.plot(x, y, color=colour, linewidth=2, label=f"{c['name']}: {_auc_label(c['auc'])}")
        if c["reference"] is not None:
            rx, ry = c["reference"]
            ax.plot(rx, ry, color=colour, linewidth=1.3, linestyle="--",
                    label=f"{c['name']} reference: {_auc_label(c['reference_auc'])}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("background efficiency (false-positive rate)")
    ax.set_ylabel("signal efficiency (true-positive rate)")
    ax.grid(color="#e5e5e5", linewidth=0.8)
    ax.legend(loc="lower right", frameon=True)
    return _png(fig)


# ------------------------------------------------------------------------------------- sections


def _header(record: dict) -> str:
    title = _text(record.get("title") or record.get("assignment") or "assignment", MAX_NAME_CHARS)
    score, max_score = _num(record.get("score")), _num(record.get("max_score"))
    if score is None or max_score is None:
        overall = "fail"
    elif max_score > 0 and score >= max_score:
        overall = "pass"
    else:
        overall = "partial" if score > 0 else "fail"
    meta = [f"student <strong>{_e(record.get('student'), MAX_NAME_CHARS)}</strong>",
            f"assignment <code>{_e(record.get('assignment'), MAX_NAME_CHARS)}</code>"]
    if record.get("profile"):
        meta.append(f"profile <code>{_e(record.get('profile'))}</code>")
    if "executed" in record:
        meta.append("notebook re-executed by the grader" if record.get("executed")
                    else "notebook not re-executed: the grader used the files you saved")
    seconds = _num(record.get("seconds"))
    if seconds is not None:
        meta.append(f"graded in {seconds:.1f} s")
    return (f"<header><h1>{html.escape(title, quote=True)}</h1>"
            f'<p class="meta">{" · ".join(meta)}</p>'
            f'<div class="total {overall}">score {_fmt(score)} / {_fmt(max_score)}</div></header>')


def _flags(record: dict) -> str:
    flags = record.get("flags")
    if not isinstance(flags, list) or not flags:
        return ""
    items = []
    for f in flags:
        f = f if isinstance(f, dict) else {"reason": f}
        check = f" (check <code>{_e(f.get('check'))}</code>)" if f.get("check") else ""
        items.append(f"<li>{_e(f.get('reason'), MAX_MESSAGE_CHARS)}{check}</li>")
    return ('<section class="flag"><strong>Flagged for review.</strong> An instructor will look at this '
            "submission before the grade is final:<ul>" + "".join(items) + "</ul></section>")


def _notes(record: dict) -> str:
    notes = _text(record.get("output"), MAX_NOTES_CHARS).strip("\n")
    if not notes:
        return ""
    return f"<section><h2>Notes from the grader</h2><pre>{html.escape(notes, quote=True)}</pre></section>"


_STATUS_WORD = {"pass": "✓ pass", "partial": "◐ partial", "fail": "✗ fail"}


def _checks(record: dict) -> str:
    checks = record.get("checks")
    if not isinstance(checks, list) or not checks:
        return "<section><h2>Checks</h2><p class=\"muted\">No checks were recorded.</p></section>"
    rows = []
    notes = _text(record.get("output")).strip()
    for c in checks:
        c = c if isinstance(c, dict) else {}
        status = _status(c)
        message = _e(c.get("output"), MAX_MESSAGE_CHARS)
        if notes and _text(c.get("output")).strip() == notes:  # e.g. the notebook failed: one message for all
            message = '<span class="muted">see the notes above</span>'
        rows.append(
            f'<tr class="{status}"><td>{_e(c.get("title") or c.get("id"), MAX_NAME_CHARS)}</td>'
            f'<td class="num">{_fmt(c.get("score"))} / {_fmt(c.get("points"))}</td>'
            f'<td class="status">{_STATUS_WORD[status]}</td>'
            f'<td class="msg">{message}</td></tr>'
        )
    counts = {s: sum(1 for c in checks if _status(c if isinstance(c, dict) else {}) == s) for s in _STATUS_WORD}
    summary = ", ".join(f"{counts[s]} {s}" for s in _STATUS_WORD if counts[s])
    return ("<section><h2>Checks</h2><table><thead><tr><th>check</th><th>points</th><th>result</th>"
            "<th>message</th></tr></thead><tbody>" + "".join(rows) + "</tbody>"
            f'<tfoot><tr><td>total</td><td class="num">{_fmt(record.get("score"))} / '
            f'{_fmt(record.get("max_score"))}</td><td colspan="2">{summary}</td></tr></tfoot></table></section>')


CONFUSION_CAPTION = (
    "Each row is one true digit: the row's cells count how the model classified the test images of that "
    "digit, by predicted digit (columns). The blue diagonal counts the correct ones; the red cells off the "
    "diagonal are mistakes, darker for more. The largest red cells are the confusions to work on."
)
DIGITS_CAPTION = (
    "Test images the model got wrong, most confident mistakes first, each with its true digit, the digit "
    "the model predicted and how sure it was. Mistakes on clearly written digits point at the model; "
    "ambiguous ones are hard for everyone."
)
MOVED_CAPTION = (
    "Moved test images the model got wrong, most confident mistakes first. Each is a test digit turned by up "
    "to 15°, shifted by up to 3 pixels and zoomed by up to 15 %, as handwriting varies; a model that learned "
    "what stays the same under these changes reads them as well as the originals."
)
ROC_CAPTION = (
    "A ROC curve shows, for every threshold on a classifier's output, the fraction of signal events kept "
    "(signal efficiency, y axis) against the fraction of background events kept (background efficiency, "
    "i.e. the false-positive rate, x axis). Better classifiers bend towards the top left; the area under "
    "the curve (AUC) is 0.5 for guessing and 1 for perfect separation. Solid: your models; dashed, same "
    "colour: the reference solution."
)


def _mnist_section(name: str, detail: dict) -> str:
    label = detail.get("file") or name
    parts = [f"<section><h2>Model <code>{_e(label, MAX_NAME_CHARS)}</code></h2>"]
    accuracy = _num(detail.get("accuracy"))
    if accuracy is not None:
        parts.append(f"<p>Accuracy on the hidden test images: <strong>{100 * accuracy:.2f} %</strong></p>")
    confusion = _confusion_matrix(detail.get("confusion"))
    if confusion is not None:
        parts.append("<h3>Confusion matrix</h3><figure>" + confusion_table(confusion)
                     + f"<figcaption>{CONFUSION_CAPTION}</figcaption></figure>")
    digits = _digits(detail.get("misclassified"))
    if digits:
        parts.append(f"<h3>Misclassified digits ({len(digits)} shown)</h3><figure>"
                     + digits_grid(digits, "misclassified test digit")
                     + f"<figcaption>{DIGITS_CAPTION}</figcaption></figure>")
    moved = detail.get("moved") if isinstance(detail.get("moved"), dict) else None
    if moved is not None:
        moved_accuracy = _num(moved.get("accuracy"))
        parts.append("<h3>Moved digits</h3>")
        if moved_accuracy is not None:
            parts.append(f"<p>Accuracy on the same test images moved (rotated, shifted and zoomed a little): "
                         f"<strong>{100 * moved_accuracy:.2f} %</strong></p>")
        moved_digits = _digits(moved.get("misclassified"))
        if moved_digits:
            parts.append("<figure>" + digits_grid(moved_digits, "misclassified moved digit")
                         + f"<figcaption>{MOVED_CAPTION}</figcaption></figure>")
    if confusion is None and not digits and moved is None:
        parts.append('<p class="muted">No plots for this model.</p>')
    return "".join(parts) + "</section>"


def _roc_section(items: list[tuple[str, dict]]) -> str:
    curves, rows = [], []
    for k, (name, d) in enumerate(items):
        label = _safe_name(name, f"model {k + 1}")
        curve = _curve(d.get("fpr"), d.get("tpr"))
        ref = d.get("reference") if isinstance(d.get("reference"), dict) else None
        ref_curve = _curve(ref.get("fpr"), ref.get("tpr")) if ref else None
        if curve is not None:
            curves.append({"name": label, "auc": d.get("auc"), "curve": curve, "reference": ref_curve,
                           "reference_auc": ref.get("auc") if ref else None})
        auc, ref_auc = _num(d.get("auc")), _num(ref.get("auc")) if ref else None
        diff = "" if auc is None or ref_auc is None else f"{auc - ref_auc:+.3f}"
        rows.append(f"<tr><td><code>{_e(d.get('file') or name, MAX_NAME_CHARS)}</code></td>"
                    f'<td class="num">{_fmt(auc, ".3f")}</td><td class="num">{_fmt(ref_auc, ".3f")}</td>'
                    f'<td class="num">{diff or "–"}</td></tr>')
    parts = ["<section><h2>ROC curves</h2>"]
    if curves:
        parts.append("<figure>" + _img(roc_png(curves), "ROC curves of the models and the reference solution")
                     + f"<figcaption>{ROC_CAPTION}</figcaption></figure>")
    else:
        parts.append('<p class="muted">No ROC curve was recorded.</p>')
    parts.append("<table><thead><tr><th>model</th><th>your AUC</th><th>reference AUC</th><th>difference</th>"
                 "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")
    return "".join(parts)


def _details(record: dict) -> str:
    details = record.get("details")
    if not isinstance(details, dict) or not details:
        where = "the notes and the checks above" if _text(record.get("output")).strip() else "the checks above"
        return ('<section><h2>Plots</h2><p class="muted">No plots: the grader had no readable model to '
                f"evaluate (see {where}).</p></section>")
    parts, rocs = [], []
    for name, detail in details.items():
        if not isinstance(detail, dict):
            continue
        if detail.get("kind") == "confusion":
            parts.append(_mnist_section(name, detail))
        elif detail.get("kind") == "roc":
            rocs.append((name, detail))
    if rocs:
        parts.append(_roc_section(rocs))
    return "".join(parts)


# ------------------------------------------------------------------------------------------ page


def render(record: dict) -> str:
    """The feedback page for one grading record, as a self-contained HTML document."""
    body = _header(record) + _flags(record) + _notes(record) + _checks(record) + _details(record)
    title = (f"{_text(record.get('title') or record.get('assignment') or 'assignment', MAX_NAME_CHARS)} – "
             f"{_text(record.get('student'), MAX_NAME_CHARS)}: "
             f"{_fmt(record.get('score'))} / {_fmt(record.get('max_score'))}")
    return page(title, body + "<footer>Generated by the course autograder from your grading record. "
                "Questions about a check? Ask your instructor and quote the check's message.</footer>", CSS)


def page(title: str, body: str, css: str) -> str:
    """A self-contained HTML document: no script may run and nothing may be loaded from outside it (CSP)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title, quote=True)}</title><style>{css}</style></head>\n"
        f"<body><main>{body}</main></body></html>\n"
    )


def write(record: dict, folder: Path) -> Path:
    """Write ``folder/feedback.html`` atomically (a temporary file in ``folder``, then os.replace)."""
    path = Path(folder) / FEEDBACK_FILE
    atomic_write(path, render(record))
    return path
