"""The per-student feedback page (autograder.exporters.feedback_html), checked as HTML and in a real browser.

Records are real ``StudentResult.to_dict()`` records of the course's assignments: an MNIST one with
real test images (the conftest ``mnist`` fixture; skipped without the data), a SUSY one with three
ROC curves and their reference curves, and one whose notebook failed before saving any model. The
browser tests open the written file in headless chromium (tests/browser.py) and are marked
``browser``; they skip, saying why, where Playwright or chromium is missing.
"""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest

import course_config
from autograder.exporters import feedback_html
from autograder.results import CheckResult, StudentResult
from tests import browser as browser_helper

browser_test = pytest.mark.browser

HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "attr": '"><b>bold</b>',
    "formula": '=HYPERLINK("http://evil.example/x","click")',
    "cmd": "=cmd|' /C calc'!A0",
}
HOSTILE_STUDENT = HOSTILE["script"] + " " + HOSTILE["attr"]
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


# ---------------------------------------------------------------------------------------- records


def _checks(assignment: str, scores: dict[str, float], messages: dict[str, str] | None = None) -> list[CheckResult]:
    """One CheckResult per configured check of ``assignment``: full points unless ``scores`` says otherwise."""
    out = []
    for c in course_config.ASSIGNMENTS[assignment].checks:
        score = scores.get(c.id, c.points)
        message = (messages or {}).get(c.id, "passed" if score == c.points else f"{score:g} of {c.points:g} points")
        out.append(CheckResult(c.id, c.title, c.points, score, message, "passed" if score == c.points else "failed"))
    return out


# Typical confusions of an MNIST model: true digit -> digits it is mistaken for.
CONFUSIONS = {0: (6, 8), 1: (7, 8), 2: (7, 8), 3: (5, 8), 4: (9, 6),
              5: (3, 6), 6: (0, 5), 7: (2, 9), 8: (3, 9), 9: (4, 7)}


def mnist_record(mnist, *, student="ada", output=None, check_messages=None, flags=None) -> dict:
    """A graded mnist_cnn submission: real test images, predictions with about 1 % typical mistakes."""
    _, (x_test, y_test) = mnist
    rng = np.random.default_rng(1)
    predicted = y_test.astype(np.int64).copy()
    wrong = rng.choice(len(y_test), size=95, replace=False)
    for i in wrong:
        predicted[i] = rng.choice(CONFUSIONS[int(y_test[i])])
    truth = y_test.astype(np.int64)
    confusion = np.bincount(truth * 10 + predicted, minlength=100).reshape(10, 10)
    confidence = np.sort(rng.uniform(0.5, 0.999, size=len(wrong)))[::-1]
    misclassified = [
        {"index": int(i), "true": int(truth[i]), "predicted": int(predicted[i]),
         "confidence": round(float(p), 4), "image": x_test[i].tolist()}
        for i, p in zip(wrong[:12], confidence[:12], strict=True)
    ]
    accuracy = float(np.mean(predicted == truth))
    result = StudentResult(
        student=student, assignment="mnist_cnn",
        checks=_checks("mnist_cnn", {"test_accuracy": 2.5},
                       {"test_accuracy": f"test accuracy {accuracy:.4f}: half credit (full credit from 0.9870)",
                        **(check_messages or {})}),
        output=output if output is not None else "Graded the model file you saved (mnist_cnn.keras).",
        seconds=1.2, extra={"profile": "quick", "executed": False},
        details={"model": {"kind": "confusion", "file": "mnist_cnn.keras", "accuracy": accuracy,
                           "confusion": confusion.tolist(), "misclassified": misclassified}},
        flags=flags or [],
    )
    return json.loads(json.dumps(result.to_dict()))  # as grading.json holds it


def _roc(auc: float, n: int = 201) -> tuple[list[float], list[float]]:
    """A smooth ROC curve with the given area: tpr = 1 - (1 - fpr)^k, whose AUC is k / (k + 1)."""
    k = auc / (1 - auc)
    fpr = np.linspace(0, 1, n)
    return [round(float(v), 5) for v in fpr], [round(float(v), 5) for v in 1 - (1 - fpr) ** k]


def susy_record(*, reference=True) -> dict:
    """A graded susy submission: three models, each with its ROC curve and the reference solution's."""
    details = {}
    models = (("logreg", "susy_logreg.skops", 0.83, 0.84), ("trees", "susy_trees.skops", 0.845, 0.86),
              ("dnn", "susy_dnn.keras", 0.871, 0.874))
    for name, file, auc, ref in models:
        fpr, tpr = _roc(auc)
        rfpr, rtpr = _roc(ref)
        details[name] = {"kind": "roc", "file": file, "auc": auc, "fpr": fpr, "tpr": tpr,
                         "reference": {"label": "reference solution", "auc": ref, "fpr": rfpr, "tpr": rtpr}
                         if reference else None}
    result = StudentResult(
        student="grace", assignment="susy",
        checks=_checks("susy", {"logreg_auc": 1.0, "trees_auc": 1.25},
                       {"logreg_auc": "ROC AUC 0.830: half credit (full credit from 0.835)"}),
        output="Graded the three model files you saved.", seconds=3.4,
        extra={"profile": "quick", "executed": True}, details=details,
        flags=[{"check": "dnn_auc", "reason": "the deep network's AUC is higher than the re-executed notebook's"}],
    )
    return json.loads(json.dumps(result.to_dict()))  # as grading.json holds it


def failed_record(student="alan") -> dict:
    """The notebook raised before saving any model: every check failed, no details."""
    message = ("Your notebook raised an error while the grader re-executed it, so no model was saved:\n\n"
               "Cell 7:\n----> 3 model.fit(x_train, y_train, epochs=EPOCHS)\nNameError: name 'model' is not defined")
    a = course_config.ASSIGNMENTS["mnist_dense"]
    checks = [CheckResult(c.id, c.title, c.points, 0.0, message, "failed") for c in a.checks]
    result = StudentResult(student, a.name, checks, message, 12.0, extra={"profile": "quick", "executed": True})
    return json.loads(json.dumps(result.to_dict()))  # as grading.json holds it


def hostile_record(record: dict) -> dict:
    """``record`` with hostile text wherever the student controls it (and in the title)."""
    record = json.loads(json.dumps(record))
    record["student"] = HOSTILE_STUDENT
    record["title"] = HOSTILE["img"] + " " + record["title"]
    record["output"] = "\n".join(HOSTILE.values()) + "\n# markdown *heading*\nünïcödé ✓ " + "x" * 50_000
    record["checks"][0]["title"] = HOSTILE["attr"]
    record["checks"][-1]["output"] = HOSTILE["img"] + "\n" + HOSTILE["formula"]
    record["flags"] = [{"check": record["checks"][-1]["id"], "reason": HOSTILE["cmd"] + " " + HOSTILE["img"]}]
    return record


@pytest.fixture(scope="module")
def records() -> dict:
    """The records that need no data: SUSY, a failed notebook, and SUSY with hostile text."""
    susy = susy_record()
    return {"susy": susy, "failed": failed_record(), "hostile": hostile_record(susy)}


@pytest.fixture(scope="module")
def mnist_rec(mnist) -> dict:
    return mnist_record(mnist)


# ------------------------------------------------------------------------------- without a browser


class _Tags(HTMLParser):
    """Every start tag and attribute name of a page, as the standard library's HTML parser sees them."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags, self.attributes, self.urls = set(), set(), []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("src", "href", "action", "background", "poster", "srcset"):
                self.urls.append(value or "")


PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p", "strong",
             "code", "div", "section", "ul", "li", "pre", "table", "thead", "tbody", "tfoot", "tr", "th", "td",
             "figure", "img", "figcaption", "footer", "span"}


def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in DATA_URI.findall(page)]


def check_page(name: str, page: str, images: int, digits: int = 0) -> None:
    """What every page must be: our tags only, no script or handler, figures inline, small, no grader code.
    ``images`` figures, and ``digits`` digit images (a digit's 28x28 pixels, each a 4x4 square)."""
    import matplotlib.image

    assert page.startswith("<!DOCTYPE html>") and page.count("<title>") == 1, name
    parsed = _Tags(page)
    assert parsed.tags <= PAGE_TAGS and "script" not in parsed.tags, (name, parsed.tags - PAGE_TAGS)
    assert not any(a.startswith("on") for a in parsed.attributes), (name, parsed.attributes)
    assert all(u.startswith("data:image/png;base64,") for u in parsed.urls), name
    assert "url(" not in page and "@import" not in page, name
    assert len(page.encode()) < 1_000_000, name
    pngs = _pngs(page)
    assert len(pngs) == images + digits == page.count("<img"), name
    shapes = [matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2] for png in pngs]
    assert sum(shape == (112, 112) for shape in shapes) == digits, (name, shapes)
    assert all(shape[0] > 100 and shape[1] > 100 for shape in shapes), (name, shapes)
    assert all(len(png) < 120_000 for png in pngs), name
    assert "def test_" not in page and "assert " not in page, name


def test_page_is_self_contained_and_escaped(records):
    """Needs neither data nor a browser: structure, content, and hostile text only ever escaped."""
    pages = {name: feedback_html.render(r) for name, r in records.items()}
    for name, page in pages.items():
        check_page(name, page, images=0 if name == "failed" else 1)
    susy_page, failed_page = pages["susy"], pages["failed"]
    assert "http://" not in susy_page and "https://" not in susy_page
    assert "Searching for supersymmetry" in susy_page and "grace" in susy_page
    assert f"score {records['susy']['score']:g} / {records['susy']['max_score']:g}" in susy_page
    for c in records["susy"]["checks"]:
        assert feedback_html._e(c["title"]) in susy_page
    assert susy_page.count('<tr class="partial">') == 2 and susy_page.count('<tr class="pass">') == 4
    assert "Flagged for review" in susy_page and "A ROC curve shows" in susy_page
    assert all(f in susy_page for f in ("susy_logreg.skops", "susy_trees.skops", "susy_dnn.keras", "0.840", "-0.010"))
    assert "NameError: name &#x27;model&#x27; is not defined" in failed_page and "No plots" in failed_page
    assert failed_page.count('<tr class="fail">') == len(records["failed"]["checks"])
    assert failed_page.count("NameError") == 1  # in the notes; each check row points there
    assert failed_page.count("see the notes above") == len(records["failed"]["checks"])
    assert "Flagged for review" not in failed_page

    hostile_page = pages["hostile"]
    for text in list(HOSTILE.values()) + [HOSTILE_STUDENT]:
        assert feedback_html._e(text) in hostile_page
        if any(ch in text for ch in "<>\"'&"):
            assert text not in hostile_page
    assert "<b>" not in hostile_page and "ünïcödé ✓" in hostile_page and "more characters cut" in hostile_page


def test_mnist_page_shows_aggregates_only(mnist_rec, mnist):
    """The MNIST page: confusion matrix and digit grid, every check; no test-label vector."""
    page = feedback_html.render(mnist_rec)
    check_page("mnist", page, images=0, digits=12)  # the confusion matrix is a table, the digits' labels text
    import matplotlib.image

    first = mnist_rec["details"]["model"]["misclassified"][0]
    sure = f"{100 * first['confidence']:.{1 if first['confidence'] >= 0.995 else 0}f} % confident"
    assert f"<span>true {first['true']} / predicted {first['predicted']}</span><span>{sure}</span>" in page
    image = matplotlib.image.imread(io.BytesIO(_pngs(page)[0]), format="png")
    pixels = np.rint(image[::4, ::4] * 255).astype(int)  # one value per 4x4 square: dark ink on white
    assert np.array_equal(pixels, 255 - np.asarray(first["image"])), "the first digit's own pixels, inverted"
    confusion = mnist_rec["details"]["model"]["confusion"]
    table = page[page.index('<table class="confusion">'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r'<td style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{3,6})">(\d+)</td>', table)
    assert [int(c[2]) for c in cells] == [v for row in confusion for v in row]  # row by row, every count
    diagonal = [cells[11 * k][0] for k in range(10)]
    assert all(int(c[1:3], 16) < int(c[5:7], 16) for c in diagonal), diagonal  # the correct ones blue
    worst = max((v, i, j) for i, row in enumerate(confusion) for j, v in enumerate(row) if i != j)
    colour = cells[10 * worst[1] + worst[2]][0]
    assert int(colour[1:3], 16) > int(colour[5:7], 16), colour  # the most frequent mistake red
    assert "MNIST with a convolutional network" in page and "ada" in page
    assert f"score {mnist_rec['score']:g} / {mnist_rec['max_score']:g}" in page
    for c in mnist_rec["checks"]:
        assert feedback_html._e(c["title"]) in page
    assert page.count('<tr class="pass">') == len(mnist_rec["checks"]) - 1 and page.count('<tr class="partial">') == 1
    assert "Each row is one true digit" in page and "Misclassified digits (12 shown)" in page
    assert "Flagged for review" not in page
    _, (_, y_test) = mnist
    first = [str(int(v)) for v in y_test[:50]]
    for s in (",".join(first), ", ".join(first), " ".join(first), "".join(first), str(first)):
        assert s not in page
    assert len(page.encode()) < 300_000


def test_malformed_records_render_without_plots():
    """Missing or ill-formed fields never crash the page; what cannot be drawn is simply left out."""
    record = {
        "student": "\ud800lone surrogate\x00", "assignment": "mnist_cnn", "score": None, "max_score": "ten",
        "checks": [{"title": "no numbers"}, "not a dict", {"id": "x", "points": 1, "score": 0.5, "status": "passed"}],
        "flags": ["just a string"],
        "details": {
            "model": {"kind": "confusion", "confusion": [[1, 2], [3]], "misclassified": [{"image": [[0] * 27] * 28}, 7]},
            "broken": {"kind": "roc", "fpr": ["a", "b"], "tpr": [0.1]},
            "odd": "not a dict",
            "other": {"kind": "unknown"},
        },
    }
    page = feedback_html.render(record)
    assert "<img" not in page and "No plots for this model" in page and "No ROC curve was recorded" in page
    assert "score – / –" in page and "\x00" not in page and "Flagged for review" in page
    assert page.count('<tr class="partial">') == 1 and page.count('<tr class="fail">') == 2
    assert "No plots: the grader had no readable model" in feedback_html.render({"details": {}})
    page.encode("utf-8")  # valid Unicode throughout

    # A ROC model whose name is not an identifier still gets a curve, under a neutral label.
    susy = susy_record(reference=False)
    susy["details"] = {"$\\frac{a}{b}$ <x>": susy["details"]["logreg"]}
    page = feedback_html.render(susy)
    assert len(_pngs(page)) == 1 and "&lt;x&gt;" not in page  # the name is not in the table either: its file is


def test_render_is_a_pure_function(records):
    """Same record, same bytes; matplotlib's settings and pyplot's figure list are left as they were."""
    import matplotlib
    import matplotlib.pyplot as plt

    before = dict(matplotlib.rcParams)
    record = json.loads(json.dumps(records["susy"]))
    assert feedback_html.render(record) == feedback_html.render(records["susy"])
    assert record == records["susy"] and dict(matplotlib.rcParams) == before and plt.get_fignums() == []


def test_write_is_atomic_and_replaces(records, tmp_path):
    folder = tmp_path / "ada" / "mnist_cnn"
    folder.mkdir(parents=True)
    (folder / "feedback.html").write_text("old")
    path = feedback_html.write(records["failed"], folder)
    assert path == folder / "feedback.html"
    assert path.read_text(encoding="utf-8") == feedback_html.render(records["failed"])
    assert sorted(p.name for p in folder.iterdir()) == ["feedback.html"]  # no temporary file left


# ----------------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def chromium():
    with browser_helper.launch() as b:
        yield b


@browser_test
@pytest.mark.parametrize("name, images, rows", [("mnist", 12, 16), ("susy", 1, 9), ("failed", 0, 5)])
def test_page_in_chromium(chromium, records, request, tmp_path, name, images, rows):
    """Every image decodes, nothing is requested outside the file, the CSP is not violated."""
    record = request.getfixturevalue("mnist_rec") if name == "mnist" else records[name]
    path = feedback_html.write(record, tmp_path)
    facts = browser_helper.page_facts(chromium, path, screenshot=tmp_path / "page.png")
    assert len(facts["images"]) == images
    for img in facts["images"]:
        assert img["complete"] and img["naturalWidth"] > 0 and img["decoded"] and img["src_scheme"] == "data", img
    assert facts["outside"] == [] and all(u.startswith(("file:", "data:")) for u in facts["requests"])
    assert facts["errors"] == [] and facts["scripts"] == 0 and facts["handler_elements"] == []
    assert record["student"] in facts["title"] and f"{record['score']:g} / {record['max_score']:g}" in facts["title"]
    # A row per check, and per ROC table model (SUSY) or confusion-matrix digit (MNIST).
    assert facts["rows"] == len(record["checks"]) + {"susy": 3, "mnist": 10}.get(name, 0) == rows
    assert (tmp_path / "page.png").stat().st_size > 10_000


@browser_test
def test_hostile_text_is_inert_in_chromium(chromium, records, tmp_path):
    """Student text shows literally: no script, no on* handler, no injected element."""
    record = records["hostile"]
    facts = browser_helper.page_facts(chromium, feedback_html.write(record, tmp_path))
    assert facts["scripts"] == 0 and facts["handler_elements"] == [] and facts["errors"] == []
    assert "b" not in facts["tags"] and len(facts["images"]) == 1 and facts["images"][0]["naturalWidth"] > 0
    assert facts["outside"] == []
    assert HOSTILE_STUDENT in facts["title"] and HOSTILE["img"] in facts["title"]
    for text in HOSTILE.values():
        assert text in facts["text"]
    assert "ünïcödé ✓" in facts["text"]


@browser_test
def test_browser_helper_reports_outside_requests(chromium, tmp_path):
    """The helper itself: a page that does try to load something is caught (and blocked)."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><title>t</title><img src="http://127.0.0.1:9/x.png"><script>1</script>')
    facts = browser_helper.page_facts(chromium, page)
    assert facts["outside"] == ["http://127.0.0.1:9/x.png"] and facts["scripts"] == 1
    assert not facts["images"][0]["complete"] or facts["images"][0]["naturalWidth"] == 0


def test_browser_tests_skip_with_a_reason(monkeypatch):
    """Without chromium (or Playwright) the browser tests skip, saying what is missing."""
    monkeypatch.setattr(browser_helper, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    assert "chromium" in browser_helper.missing() or "playwright" in browser_helper.missing()
    with pytest.raises(pytest.skip.Exception, match="browser test needs a headless chromium"):
        with browser_helper.launch():
            pass


def test_browser_tests_fail_in_ci_without_a_browser(monkeypatch):
    """In CI, where the Makefile installs chromium, a missing browser fails the test instead of hiding it."""
    monkeypatch.setattr(browser_helper, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="browser test needs a headless chromium"):
        with browser_helper.launch():
            pass
