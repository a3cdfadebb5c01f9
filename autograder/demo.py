"""``make demo``: build the release, create a sample class, grade it by re-execution, print the table.

The sample class is made from the committed solution and release notebooks, each student a
situation a grading TA meets: the reference solution (full marks), the untouched release (zero),
plausible but wrong work (partial credit), a notebook that raises (zero, the error shown) and one
that trains far too long (zero, "time limit"). Everything is graded with ``--execute --profile quick``
exactly as ``autograder grade`` does it, and the demo checks that each outcome is the expected one.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import course_config
from autograder import batch, release
from autograder.exporters.console import table

PROFILE = "quick"


@dataclass(frozen=True)
class Sample:
    """A student of the sample class: where the work comes from, what is changed, what to expect."""

    student: str
    story: str
    base: str  # "solutions" or "release"
    edits: tuple[tuple[str, str, str], ...]  # (cell grade_id, old text, new text)
    expect: str  # "full", "zero" or "partial"
    expect_words: str = ""  # must appear in the notes or in a check that lost points


SAMPLES: dict[str, tuple[Sample, ...]] = {
    "mnist_dense": (
        Sample("ada", "reference solution", "solutions", (), "full"),
        Sample("ben", "untouched release", "release", (), "zero", "NotImplementedError"),
        Sample(
            "cleo",
            "no softmax on the output layer (trains on logits)",
            "solutions",
            (
                ("build_model", 'keras.layers.Dense(10, activation="softmax")', "keras.layers.Dense(10)"),
                ("compile", 'loss="sparse_categorical_crossentropy"',
                 "loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
            ),
            "partial",
            "Dense(10, softmax)",
        ),
        Sample(
            "dan",
            "learning rate 1000x too small: barely trains",
            "solutions",
            (("compile", "CosineDecay(1e-3", "CosineDecay(1e-6"),),
            "partial",
            "test accuracy",
        ),
        Sample(
            "eve",
            "typo in the model: the notebook raises",
            "solutions",
            (("build_model", 'keras.layers.Dense(512, activation="relu")', 'keras.layers.Dence(512, activation="relu")'),),
            "zero",
            "AttributeError",
        ),
        Sample(
            "fay",
            "ignores EPOCHS and trains for 500 epochs",
            "solutions",
            (("train", "epochs=EPOCHS", "epochs=500"),),
            "zero",
            "time limit",
        ),
    ),
    "mnist_cnn": (
        Sample("ada", "reference solution", "solutions", (), "full"),
        Sample("ben", "untouched release", "release", (), "zero", "NotImplementedError"),
        Sample(
            "cleo",
            "no pooling layers (and so far too many parameters)",
            "solutions",
            (
                ("build_model", "keras.layers.MaxPooling2D(pool_size=2),\n", ""),
                ("build_model", "keras.layers.MaxPooling2D(pool_size=2),\n", ""),
            ),
            "partial",
            "add at least one pooling layer",
        ),
    ),
    "mnist_augment": (
        Sample("ada", "reference solution", "solutions", (), "full"),
        Sample("ben", "untouched release", "release", (), "zero", "NotImplementedError"),
        Sample(
            "cleo",
            "adds horizontal flips to the augmentation",
            "solutions",
            (("build_model", "keras.layers.RandomZoom(0.1),", 'keras.layers.RandomZoom(0.1),\n            keras.layers.RandomFlip("horizontal"),'),),
            "partial",
            "remove RandomFlip",
        ),
        Sample(
            "dan",
            "augmentation layers kept, every factor set to 0",
            "solutions",
            (
                ("build_model", "keras.layers.RandomRotation(0.03),", "keras.layers.RandomRotation(0.0),"),
                ("build_model", "keras.layers.RandomTranslation(0.1, 0.1),", "keras.layers.RandomTranslation(0.0, 0.0),"),
                ("build_model", "keras.layers.RandomZoom(0.1),", "keras.layers.RandomZoom(0.0),"),
            ),
            "partial",
            "accuracy on the moved test digits",
        ),
    ),
    "susy": (
        Sample("ada", "reference solution", "solutions", (), "full"),
        Sample("ben", "untouched release", "release", (), "zero", "NotImplementedError"),
        Sample(
            "cleo",
            "saves its boosted trees under the logistic regression's name",
            "solutions",
            # In an answer cell: a change to the locked save cell would be undone by the grader.
            (("trees", 'validation AUC {auc_trees:.4f}")',
              'validation AUC {auc_trees:.4f}")\nlogreg = trees  # the stronger model under the other name'),),
            "partial",
            "must hold LogisticRegression",
        ),
    ),
}


def make_sample(sample: Sample, assignment: course_config.Assignment, submitted: Path) -> None:
    """Write ``submitted/<student>/<assignment>/`` for one sample student."""
    import nbformat

    dst = submitted / sample.student / assignment.name
    if sample.base == "solutions":  # with the helpers beside it, as a student's folder has them
        release.runnable_solution(assignment, dst)
    else:
        shutil.copytree(course_config.COURSE_DIR / sample.base / assignment.name, dst)
    nb_path = dst / assignment.notebook
    nb = nbformat.read(nb_path, as_version=4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    for grade_id, old, new in sample.edits:
        cell = cells.get(grade_id)
        if cell is None or old not in cell.source:
            raise RuntimeError(f"demo sample {sample.student}: cell {grade_id!r} no longer contains {old!r}")
        cell.source = cell.source.replace(old, new, 1)
    nbformat.write(nb, nb_path)


def outcome_ok(sample: Sample, result) -> bool:
    if sample.expect == "full" and result.score != result.max_score:
        return False
    if sample.expect == "zero" and result.score != 0:
        return False
    if sample.expect == "partial" and not 0 < result.score < result.max_score:
        return False
    # The expected words must explain lost points: in the notes, or in a check that did not earn all its points.
    text = result.output + "\n" + "\n".join(c.output for c in result.checks if c.score < c.points)
    return sample.expect_words in text


def main(out: Path, assignments: list[str] | None = None, workers: int | None = None) -> int:
    start = time.monotonic()
    names = assignments or [n for n in course_config.ASSIGNMENTS if n in SAMPLES]
    out = out.resolve()
    print(f"== building release/ and solutions/ with nbgrader: {', '.join(names)}")
    for path in release.release(names):
        print(f"   wrote {path}/")
    submitted, results_dir = out / "submitted", out / "results"
    for folder in (submitted, results_dir):
        if folder.exists():
            shutil.rmtree(folder)
    for name in names:
        for sample in SAMPLES[name]:
            make_sample(sample, course_config.assignment(name), submitted)
    limit = course_config.profile(PROFILE).execute_time_limit_s
    count = sum(len(SAMPLES[n]) for n in names)
    print(f"\n== grading {count} sample students of {len(names)} assignment(s) in one batch: --execute --profile "
          f"{PROFILE} (time limit {limit} s per notebook)")
    # The slowest sample (the one that runs into the time limit) goes first, so the others overlap it.
    order = {name: sorted((s.student for s in SAMPLES[name]), key=lambda st: st != "fay") for name in names}
    reports = batch.grade_assignments(order, submitted, results_dir, execute=True, profile_name=PROFILE,
                                      workers=workers)
    all_ok = True
    for report in reports:
        results = {r.student: r for r in report.results}
        print(f"\n== {report.assignment}\n")
        print(table(report.results))
        print()
        for sample in SAMPLES[report.assignment]:
            r = results[sample.student]
            ok = outcome_ok(sample, r)
            all_ok &= ok
            first = (r.output.splitlines() or [""])[0]
            print(f"  {sample.student:5} {sample.story:52} expected {sample.expect:7} "
                  f"got {r.score:g}/{r.max_score:g} {'ok' if ok else 'UNEXPECTED'}")
            if first:
                print(f"        {first[:150]}")
    minutes = (time.monotonic() - start) / 60
    print(f"\nresults: {results_dir}/<student>/<assignment>/results.json, feedback.html and feedback.md; "
          f"{results_dir}/grades.csv, {results_dir}/summary.md")
    print(f"demo wall time: {minutes:.1f} min; " + ("every outcome as expected" if all_ok else "SOME OUTCOMES UNEXPECTED"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")))
