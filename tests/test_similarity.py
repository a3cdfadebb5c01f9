"""The class as a whole: copied models found with evidence (never a penalty), and the leaderboard.

A small real class (tests/../bench/copied_models.py builds it: honest students train the same network from
the same code on the same images with seeds of their own; copiers hand in another student's model as it
is, re-saved as .h5, re-saved by another Python and NumPy, with noise on its weights, trained one more
epoch, or with renamed layers) is graded by the real batch, which writes the similarity report and the
leaderboard from what it committed.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autograder import batch, similarity
from autograder.exporters.feedback_md import escape
from tests import browser as browser_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import copied_models  # noqa: E402

HONEST = 8


@pytest.fixture(scope="module")
def graded(tmp_path_factory, mnist):
    root = tmp_path_factory.mktemp("class")
    copiers = copied_models.make_class(root / "submitted", HONEST, images=2000, epochs=1)
    with open(root / "grading.log", "w") as log:
        batch.grade("mnist_dense", root / "submitted", root / "out", profile_name="full", workers=2, log=log)
    return root, copiers


def report_of(out: Path) -> dict:
    return json.loads((out / "similarity.json").read_text())["mnist_dense"]


@pytest.mark.slow
def test_every_kind_of_copy_is_flagged_and_no_honest_pair(graded):
    root, copiers = graded
    report = report_of(root / "out")
    flagged = {frozenset(p["students"]): p for p in report["flagged"]}
    kinds = {kind for kind, _ in copiers.values()}
    assert kinds >= {"identical file", "re-saved as .h5", "weights with noise", "trained one more epoch",
                     "renamed layers"} and any(k.startswith("re-saved by Keras") for k in kinds), kinds
    for copier, (kind, source) in copiers.items():
        pair = flagged.get(frozenset((copier, source)))
        assert pair is not None, (kind, report["flagged"])
        names = {s["name"] for s in pair["signals"] if s["flagged"]}
        assert "parameter distance" in names or "same parameters" in names, (kind, pair)
        if kind in ("identical file", "re-saved as .h5", "renamed layers") or kind.startswith("re-saved by Keras"):
            assert "same parameters" in names, (kind, pair)  # the same weights, whatever the file or Keras
    honest = [p for p in report["flagged"] if all(s.startswith("honest") for s in p["students"])]
    assert honest == [], honest
    assert report["students"] == len(list((root / "submitted").iterdir())) == HONEST + len(copiers) + 1


@pytest.mark.slow
def test_the_report_shows_the_evidence_and_the_summary_counts_it(graded):
    root, copiers = graded
    out = root / "out"
    md = (out / "similarity.md").read_text()
    copier, (kind, source) = next(iter(copiers.items()))
    a, b = (escape(s) for s in sorted((copier, source)))
    assert f"## {a} and {b} (model)" in md, md
    assert "never a penalty" in md and "error consistency (kappa)" in md
    page = (out / "similarity.html").read_text()
    assert page.count("<img") >= 1 and "Content-Security-Policy" in page
    summary = (out / "summary.md").read_text()
    assert f"Similar models: {len(report_of(out)['flagged'])} flagged pair(s)" in summary, summary


@pytest.mark.slow
def test_results_json_carries_the_leaderboard(graded):
    root, _ = graded
    results = json.loads((root / "out" / "honest_01" / "mnist_dense" / "results.json").read_text())
    (entry,) = results["leaderboard"]
    assert set(entry) == {"name", "value", "order"} and entry["order"] == "desc"
    record = json.loads((root / "out" / "honest_01" / "mnist_dense" / "grading.json").read_text())
    assert entry["value"] == record["extra"]["metrics"]["test_accuracy"] and 0.5 < entry["value"] < 1


@pytest.mark.slow
@pytest.mark.browser
def test_the_leaderboard_page_uses_pseudonyms_and_holds_flagged_models_back(graded):
    root, copiers = graded
    out = root / "out"
    page = (out / "leaderboard.html").read_text()
    students = [p.name for p in (root / "submitted").iterdir()]
    assert not [s for s in students if s in page], "a student id is on the page"
    with browser_helper.launch() as chromium:
        facts = browser_helper.page_facts(chromium, out / "leaderboard.html")
    assert facts["errors"] == [] and facts["scripts"] == 0 and facts["outside"] == []
    lines = [line for line in facts["text"].splitlines() if line.strip()]
    reference = next(i for i, line in enumerate(lines) if "reference solution" in line)
    held = [line for line in lines if "(under review)" in line]
    assert len(held) == len(copiers) + len({source for _, source in copiers.values()}), lines
    ranked = [line for line in lines if line.split("\t")[0].strip().isdigit()]
    assert ranked and all(lines.index(r) < lines.index(h) for r in ranked for h in held) and reference < lines.index(ranked[0])


@pytest.mark.slow
def test_the_class_report_on_demand_uses_the_course_pseudonyms(graded, tmp_path):
    root, _ = graded
    chosen = tmp_path / "pseudonyms.csv"
    with open(chosen, "w", newline="") as f:
        csv.writer(f).writerows([("student", "pseudonym"), ("honest_01", "Rosalind"), ("honest_02", "Lise")])
    proc = subprocess.run([sys.executable, "-m", "autograder", "class", "mnist_dense", "--out", str(root / "out"),
                           "--pseudonyms", str(chosen)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "flagged pair(s)" in proc.stdout and "leaderboard.html" in proc.stdout
    page = (root / "out" / "leaderboard.html").read_text()
    assert "Rosalind" in page and "Lise" in page


def test_the_statistics_are_the_textbook_ones():
    """Kappa, Spearman's rank correlation and the distance, against scikit-learn and SciPy pair by pair."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    correct = rng.random((4, 500)) < np.array([[0.9], [0.8], [0.95], [0.7]])
    kappa = similarity.kappa_matrix(correct)
    scores = rng.random((3, 200))
    rho = similarity.spearman_matrix(scores)
    samples = rng.normal(size=(3, 50))
    d = similarity.distance_matrix(samples)
    for i in range(4):
        for j in range(i + 1, 4):
            assert kappa[i, j] == pytest.approx(cohen_kappa_score(correct[i], correct[j]), abs=1e-6)
    for i in range(3):
        for j in range(i + 1, 3):
            assert rho[i, j] == pytest.approx(spearmanr(scores[i], scores[j]).statistic, abs=1e-9)
            a, b = samples[i], samples[j]
            assert d[i, j] == pytest.approx(np.linalg.norm(a - b) / np.sqrt(np.linalg.norm(a) * np.linalg.norm(b)))


def test_a_pair_far_outside_the_class_is_flagged_and_the_class_itself_is_not():
    """A robust z-score of at least Z_FLAG toward alike flags; the rest of a class does not."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 2000)
    evidence = {}
    for s in range(12):
        answers = labels.copy()
        wrong = rng.random(2000) < 0.05
        answers[wrong] = (labels[wrong] + rng.integers(1, 10, wrong.sum())) % 10
        evidence[f"s{s:02d}"] = {"model": {"answers": answers}}
    copy = evidence["s00"]["model"]["answers"].copy()
    copy[:5] = labels[:5]
    evidence["copy"] = {"model": {"answers": copy}}
    report = similarity.compare(evidence, labels, {"model": "classes"})
    assert [p.students for p in report["flagged"]] == [("copy", "s00")]


def test_a_tree_ensemble_handed_in_twice_is_flagged_by_its_scores_in_a_class_of_any_size():
    """Trees keep no parameters here: equal scores, bit for bit, flag a pair even where there are too few pairs
    to judge the rank correlation against a class; merely close scores do not."""
    rng = np.random.default_rng(2)
    scores = rng.random(3000).astype(np.float32)
    evidence = {"a": {"trees": {"answers": scores}}, "b": {"trees": {"answers": scores.copy()}},
                "c": {"trees": {"answers": (scores + 1e-3 * rng.random(3000)).astype(np.float32)}}}
    report = similarity.compare(evidence, None, {"trees": "score"})
    assert [p.students for p in report["flagged"]] == [("a", "b")]
    assert report["flagged"][0].signals[0].name == "same scores"
