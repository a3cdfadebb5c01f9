"""Copied models, found with evidence: every pair of a class's models compared, judged against the class.

The grader keeps, for each graded model, what it needs here (``evidence.npz`` beside the student's
results, written when the submission is graded: no model file is read again): the model's answers on
the hidden test set (its predicted class per image, or its score or value on the first
:data:`EVIDENCE_ROWS` rows) and a sample of its parameters (the weights of a network, read in the
sandbox by the grader's engine in layer order, whatever the file's format, Keras version or layer names;
the coefficients of a linear model), with a digest of them all. For every pair of students this module
measures:

- **same parameters**: the digests are equal (the same weights, value for value, whatever the file);
- **same scores** (scores and values): every kept score equal, bit for bit (a tree ensemble has no
  parameters kept here: this and the rank correlation are its signals);
- **parameter distance**: ``|a - b| / sqrt(|a| |b|)`` on the sampled parameters of two models of the same
  shapes (two networks trained from different random starts are about sqrt(2) apart; a copy trained a
  little further, or with noise added, is far closer);
- **error consistency** (classifiers): Cohen's kappa of the two models being right or wrong on each test
  image (Geirhos et al., NeurIPS 2020): honest networks agree a lot, so it is judged against the class;
- **same wrong answers** (classifiers): of the images both get wrong, the share they get wrong alike;
- **rank correlation** (scores and values): Spearman's, on the kept rows.

A signal flags a pair when the pair lies far outside the class's own distribution of it: a robust
z-score (the distance from the class's median in units of 1.4826 median absolute deviations) of at
least :data:`Z_FLAG` on the side of "more alike", and at least :data:`MIN_EFFECT` of the way from the
class's median to identical (a class whose pairs are all alike to the third decimal has a tiny spread:
the second rule keeps a pair a hair closer than the rest from counting). Equal parameters or scores always
flag, in a class of any size;
"same wrong answers" is shown as evidence and never flags on its own (few images are wrong for both). The report is for the
course staff, never a penalty: it says which signals, how far outside the class, and shows a small plot.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EVIDENCE_FILE = "evidence.npz"
EVIDENCE_ROWS = 10_000  # the rows of a score or value kept per model (a classifier keeps every test image)
PARAMETER_SAMPLE = 4096  # parameters kept per model, at positions drawn with a seed from the total count
Z_FLAG = 6.0  # how far outside the class (robust z) a pair must lie for a signal to flag it
MIN_EFFECT = 0.5  # and how much of the way from the class's median to identical
MIN_PAIRS = 10  # fewer pairs of a kind than this: no class to judge against, only equal parameters flag
ABSOLUTE_DISTANCE = 0.05  # with too few pairs to judge against: parameters this close flag


# ------------------------------------------------------------------------------------------------
# What is kept per model (trusted side, when a submission is graded)
def parameter_evidence(vector: np.ndarray, shapes: str) -> dict[str, np.ndarray]:
    """A model's parameters, kept small: their shapes, a digest of them all, and a sample at seeded positions
    (the same positions for every model with as many parameters)."""
    vector = np.ascontiguousarray(vector, dtype=np.float32).reshape(-1)
    n = len(vector)
    if n > PARAMETER_SAMPLE:
        positions = np.sort(np.random.default_rng(n).choice(n, PARAMETER_SAMPLE, replace=False))
        sample = vector[positions]
    else:
        sample = vector
    return {"shapes": np.array(shapes), "digest": np.array(hashlib.sha256(vector.tobytes()).hexdigest()),
            "sample": sample.astype(np.float32)}


def answer_evidence(outputs: np.ndarray, kind: str) -> np.ndarray:
    """A model's answers on the hidden test set, kept small: the predicted class of each row ("classes"), or
    the score or value of the first EVIDENCE_ROWS rows."""
    outputs = np.asarray(outputs)
    if kind == "classes":
        return np.argmax(outputs, axis=1).astype(np.int16)
    values = outputs[:, -1] if outputs.ndim == 2 else outputs
    return np.asarray(values[:EVIDENCE_ROWS], dtype=np.float32)


def read_evidence(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """The evidence kept in a student's folder: {model: {"answers", "shapes", "digest", "sample"}} ({} if none)."""
    path = folder / EVIDENCE_FILE
    if not path.is_file():
        return {}
    found: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                model, _, what = key.partition("/")
                found.setdefault(model, {})[what] = f[key]
    except (OSError, ValueError):
        return {}
    return found


# ------------------------------------------------------------------------------------------------
# The class
@dataclass
class Signal:
    """One measure of a pair: its value, the class's median of it, how far outside the class (robust z, on the
    side of more alike), and whether that flags the pair."""

    name: str
    value: float
    median: float | None = None
    z: float | None = None
    flagged: bool = False
    note: str = ""


@dataclass
class Pair:
    model: str
    students: tuple[str, str]
    signals: list[Signal] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return any(s.flagged for s in self.signals)


def robust_z(values: np.ndarray, more_alike: str) -> tuple[np.ndarray, float, float]:
    """The robust z-score of each value against all of them, positive on the side of more alike ("high" or
    "low"), with the median and the scale (1.4826 median absolute deviations, floored)."""
    median = float(np.median(values))
    scale = 1.4826 * float(np.median(np.abs(values - median)))
    scale = max(scale, 1e-6 * max(1.0, abs(median)), 1e-12)
    z = (values - median) / scale
    return (z if more_alike == "high" else -z), median, scale


def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def kappa_matrix(correct: np.ndarray) -> np.ndarray:
    """Cohen's kappa of right/wrong for every pair of rows of ``correct`` (students x items, booleans)."""
    c = correct.astype(np.float32)
    n_items = c.shape[1]
    agree = (c @ c.T + (1 - c) @ (1 - c).T) / n_items
    p = c.mean(axis=1, dtype=np.float64)
    expected = np.outer(p, p) + np.outer(1 - p, 1 - p)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected < 1, (agree - expected) / (1 - expected), 1.0)


def same_wrong_matrix(predicted: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Of the items both students get wrong, the share they get wrong alike (NaN where they share none)."""
    n = len(predicted)
    wrong = ~correct
    out = np.full((n, n), np.nan)
    for i in range(n):
        both = wrong[i] & wrong[i + 1:]
        alike = both & (predicted[i] == predicted[i + 1:])
        counts = both.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[i, i + 1:] = np.where(counts > 0, alike.sum(axis=1) / counts, np.nan)
    return out


def spearman_matrix(values: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of every pair of rows (ties ranked by order: the kept scores are floats)."""
    ranks = np.argsort(np.argsort(values, axis=1, kind="stable"), axis=1).astype(np.float64)
    ranks -= ranks.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(ranks, axis=1)
    norms[norms == 0] = 1.0
    ranks /= norms[:, None]
    return ranks @ ranks.T


def distance_matrix(samples: np.ndarray) -> np.ndarray:
    """|a - b| / sqrt(|a| |b|) for every pair of rows (parameter samples of models of the same shapes)."""
    x = samples.astype(np.float64)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    norms = np.sqrt(sq)
    scale = np.sqrt(np.outer(norms, norms))
    scale[scale == 0] = 1.0
    return np.sqrt(d2) / scale


IDENTICAL = {"high": 1.0, "low": 0.0}  # each signal's value for two identical models


def _judge(name: str, matrix: np.ndarray, students: list[str], more_alike: str, pairs: dict, model: str,
           flags: bool = True, absolute: float | None = None) -> dict:
    """Add the signal ``name`` of every pair to ``pairs``; its class distribution as a summary. ``flags``: whether
    the signal may flag a pair; ``absolute``: with too few pairs to judge against, the value at or beyond which
    it flags all the same."""
    i, j = _upper(len(students))
    values = matrix[i, j]
    known = ~np.isnan(values)
    summary = {"signal": name, "pairs": int(known.sum())}
    if not known.any():
        return summary
    z = np.full(values.shape, np.nan)
    zk, median, scale = robust_z(values[known], more_alike)
    z[known] = zk
    judged = known.sum() >= MIN_PAIRS
    summary.update(median=median, scale=scale, judged=bool(judged),
                   values=[round(float(v), 5) for v in values[known]])
    bound = median + MIN_EFFECT * (IDENTICAL[more_alike] - median)  # at least this far toward identical
    for a, b, v, zz in zip(i, j, values, z):
        if np.isnan(v):
            continue
        far = v >= bound if more_alike == "high" else v <= bound
        flagged = bool(flags and judged and zz >= Z_FLAG and far)
        pair = pairs.setdefault((model, students[a], students[b]), Pair(model, (students[a], students[b])))
        if judged:
            pair.signals.append(Signal(name, float(v), median, float(zz), flagged))
        elif absolute is not None and flags and (v >= absolute if more_alike == "high" else v <= absolute):
            pair.signals.append(Signal(name, float(v), flagged=True, note=f"at most {absolute} apart"))
        else:  # no class to judge against: the value alone
            pair.signals.append(Signal(name, float(v)))
    return summary


def _equal(pairs: dict, model: str, students: list[str], rows: list, name: str, note: str) -> None:
    """Put the signal ``name`` first in every pair whose ``rows`` are equal (it always flags)."""
    i, j = _upper(len(students))
    for a, b in zip(i, j):
        if np.array_equal(rows[a], rows[b]):
            pairs[(model, students[a], students[b])].signals.insert(0, Signal(name, 1.0, flagged=True, note=note))


def compare(evidence: dict[str, dict[str, dict[str, np.ndarray]]], labels: np.ndarray | None,
            kinds: dict[str, str]) -> dict:
    """Compare every pair of students' models, model by model (``kinds``: model name -> "classes", "score" or
    "value", the dataset's metric outputs; ``labels``: the hidden test labels, for classifiers).

    Returns {"models": {model: {"students", "signals": [class summaries]}}, "pairs": [Pair], "flagged": [Pair]}.
    """
    pairs: dict[tuple, Pair] = {}
    models: dict[str, dict] = {}
    for model, kind in kinds.items():
        have = sorted(s for s, e in evidence.items() if model in e)
        summaries = []
        # Answers on the hidden test set, judged against the class.
        answered = [s for s in have if "answers" in evidence[s][model]]
        lengths = {len(evidence[s][model]["answers"]) for s in answered}
        if len(answered) >= 2 and len(lengths) == 1:
            answers = np.stack([evidence[s][model]["answers"] for s in answered])
            if kind == "classes" and labels is not None and answers.shape[1] == len(labels):
                correct = answers == np.asarray(labels)[None, :]
                summaries.append(_judge("error consistency (kappa)", kappa_matrix(correct), answered, "high", pairs,
                                        model))
                summaries.append(_judge("same wrong answers", same_wrong_matrix(answers, correct), answered, "high",
                                        pairs, model, flags=False))
            elif kind != "classes":
                summaries.append(_judge("rank correlation", spearman_matrix(answers), answered, "high", pairs, model))
                _equal(pairs, model, answered, list(answers), "same scores", "every kept score equal, bit for bit")
        # Parameters, by shapes: only models of the same shapes are compared.
        by_shapes: dict[str, list[str]] = {}
        for s in have:
            if "sample" in evidence[s][model]:
                by_shapes.setdefault(str(evidence[s][model]["shapes"]), []).append(s)
        for shapes, group in by_shapes.items():
            if len(group) < 2:
                continue
            samples = np.stack([evidence[s][model]["sample"] for s in group])
            summary = _judge("parameter distance", distance_matrix(samples), group, "low", pairs, model,
                             absolute=ABSOLUTE_DISTANCE)
            summaries.append({**summary, "shapes": shapes})
            _equal(pairs, model, group, [str(evidence[s][model]["digest"]) for s in group], "same parameters",
                   "every parameter equal, value for value")
        models[model] = {"kind": kind, "students": len(have), "signals": summaries}
    everything = sorted(pairs.values(), key=lambda p: (p.model, p.students))
    flagged = sorted((p for p in everything if p.flagged), key=lambda p: -_strength(p))
    return {"models": models, "pairs": everything, "flagged": flagged}


def _strength(pair: Pair) -> float:
    """How strong a flagged pair's evidence is (for the order of the report)."""
    return max((math.inf if s.z is None else s.z) for s in pair.signals if s.flagged)


# ------------------------------------------------------------------------------------------------
# A class's committed results
def class_evidence(out_dir: Path, assignment: str, students: list[str]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The evidence kept for each student of ``assignment`` in ``out_dir`` (students without any are left out)."""
    found = {}
    for student in students:
        evidence = read_evidence(Path(out_dir) / student / assignment)
        if evidence:
            found[student] = evidence
    return found


def as_dict(assignment: str, report: dict, flags: dict[str, list[str]] | None = None) -> dict:
    """The report as plain values (what ``similarity.json`` keeps and the report pages show)."""

    def signal(s: Signal) -> dict:
        return {"name": s.name, "value": round(s.value, 5), "median": None if s.median is None else round(s.median, 5),
                "z": None if s.z is None or not math.isfinite(s.z) else round(max(-999.0, min(999.0, s.z)), 2),
                "flagged": s.flagged,
                "note": s.note}

    return {
        "assignment": assignment,
        "students": len({s for p in report["pairs"] for s in p.students}),
        "pairs": len(report["pairs"]),
        "models": report["models"],
        "flagged": [{"model": p.model, "students": list(p.students), "signals": [signal(s) for s in p.signals]}
                    for p in report["flagged"]],
        "z_flag": Z_FLAG,
    }


def flagged_students(summary: dict) -> set[str]:
    """The students in at least one flagged pair of a report (as :func:`as_dict` gives it)."""
    return {s for pair in summary.get("flagged", []) for s in pair["students"]}


def analyse(out_dir: Path, assignment, students: list[str], labels: np.ndarray | None, kind: str) -> dict:
    """Compare the committed models of ``assignment``'s students in ``out_dir`` (``kind``: the dataset's metric
    outputs; ``labels``: the hidden test labels) and return the report as plain values."""
    evidence = class_evidence(out_dir, assignment.name, students)
    report = compare(evidence, labels, {spec.name: kind for spec in assignment.models})
    return as_dict(assignment.name, report)
