"""``make demo``: the kit at work on a sample class in a few minutes, every outcome checked.

1. **Release**: ``release/`` and ``solutions/`` built from ``source/`` with real nbgrader.
2. **Re-execution** (``--execute --profile quick``): one notebook per assignment, the reference solution
   (full marks), run top to bottom in the sandbox on data without the test labels, plus a notebook that
   raises (zero, the student's error shown). The model files each run saved are kept with its results.
3. **A hostile notebook stopped by a limit**: one that ignores ``EPOCHS`` and trains for 500 epochs,
   under a time limit sized for the demo (stated; the quick profile's own is minutes).
4. **The class graded from saved models** (the default mode): per assignment, the model the re-run
   saved (full marks), a hand-in without its model file, a plausible mistake (partial credit) and a
   damaged upload, each with the message that explains it.
5. **Feedback and gradebook**: a feedback page per student, ``grades.csv`` and ``summary.md``, and the
   class's scores in an nbgrader gradebook (``gradebook.db``).

The demo checks that each outcome is the expected one and prints where the time went.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import course_config
from autograder import batch, release
from autograder.exporters.console import table

PROFILE = "quick"
HOSTILE_TIME_LIMIT_S = 30  # the hostile notebook's limit in the demo (the quick profile's: execute_time_limit_s)


@dataclass(frozen=True)
class Rerun:
    """A student whose notebook the grader re-executes: where it comes from, what is changed, what to expect."""

    student: str
    story: str
    base: str  # "solutions" or "release"
    edits: tuple[tuple[str, str, str], ...]  # (cell grade_id, old text, new text)
    expect: str  # "full", "zero" or "partial"
    expect_words: str = ""  # must appear in the notes or in a check that lost points


@dataclass(frozen=True)
class Handin:
    """A student of the class graded from saved files: what they handed in, what to expect."""

    student: str
    story: str
    files: Callable[[course_config.Assignment, Path, Path], None]  # (assignment, kept models folder, hand-in folder)
    expect: str
    expect_words: str = ""


# -------------------------------------------------------------------------------------------- re-execution
# One reference notebook per assignment, the longest first (so the others run beside it).
RERUNS: dict[str, tuple[Rerun, ...]] = {
    "mnist_augment": (Rerun("ada", "reference solution", "solutions", (), "full"),),
    "mnist_cnn": (Rerun("ada", "reference solution", "solutions", (), "full"),),
    "mnist_dense": (
        Rerun("ada", "reference solution", "solutions", (), "full"),
        Rerun("eve", "typo in the model: the notebook raises", "solutions",
              (("build_model", 'keras.layers.Dense(512, activation="relu")',
                'keras.layers.Dence(512, activation="relu")'),), "zero", "AttributeError"),
    ),
    "susy": (Rerun("ada", "reference solution", "solutions", (), "full"),),
}
HOSTILE = ("mnist_dense", Rerun("fay", "ignores EPOCHS and trains for 500 epochs", "solutions",
                                (("train", "epochs=EPOCHS", "epochs=500"),), "zero", "time limit"))


# -------------------------------------------------------------------------------------------- saved models
def _kept(kept: Path, assignment: str, file: str) -> Path:
    """A model file the re-execution of ``assignment``'s reference kept (``kept/<assignment>/<file>``)."""
    return kept / assignment / file


def handed_in(a: course_config.Assignment, kept: Path, dst: Path) -> None:
    """Every model file the reference notebook saved."""
    for spec in a.models:
        shutil.copyfile(_kept(kept, a.name, spec.file), dst / spec.file)


def no_model_file(a: course_config.Assignment, kept: Path, dst: Path) -> None:
    """The notebook only: the student forgot to upload what it saved."""


def without_softmax(a: course_config.Assignment, kept: Path, dst: Path) -> None:
    """The reference network with a linear output layer, as a student who trains on logits saves it."""
    source = _kept(kept, a.name, a.model_file)
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dst / a.model_file, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][-1]["config"]["activation"] = "linear"
                data = json.dumps(config).encode()
            zout.writestr(item, data)


@dataclass(frozen=True)
class OtherModel:
    """The model of another assignment (its reference's, kept by its re-run), saved under this one's name."""

    assignment: str

    def __call__(self, a: course_config.Assignment, kept: Path, dst: Path) -> None:
        other = course_config.assignment(self.assignment)
        shutil.copyfile(_kept(kept, other.name, other.model_file), dst / a.model_file)


def trees_as_logreg(a: course_config.Assignment, kept: Path, dst: Path) -> None:
    """SUSY: the boosted trees saved under the logistic regression's file name too."""
    handed_in(a, kept, dst)
    shutil.copyfile(dst / "susy_trees.skops", dst / "susy_logreg.skops")


def damaged(a: course_config.Assignment, kept: Path, dst: Path) -> None:
    """Every file as saved, but the last model file cut off halfway (an upload that broke off)."""
    handed_in(a, kept, dst)
    last = dst / a.models[-1].file
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])


COMMON = (
    Handin("ada", "the model her notebook saved (kept by the re-run above)", handed_in, "full"),
    Handin("ben", "uploaded the notebook without the model file", no_model_file, "zero", "not found"),
)
HANDINS: dict[str, tuple[Handin, ...]] = {
    "mnist_dense": COMMON + (
        Handin("cleo", "trained on logits: the output layer has no softmax", without_softmax, "partial",
               "Dense(10, softmax)"),
        Handin("dan", "the upload broke off: half a model file", damaged, "zero", "zip"),
    ),
    "mnist_cnn": COMMON + (
        Handin("cleo", "handed in the fully connected network of mnist_dense", OtherModel("mnist_dense"),
               "partial", "Conv2D"),
        Handin("dan", "the upload broke off: half a model file", damaged, "zero", "zip"),
    ),
    "mnist_augment": COMMON + (
        Handin("cleo", "handed in the CNN trained without augmentation", OtherModel("mnist_cnn"),
               "partial", "add RandomRotation"),
        Handin("dan", "the upload broke off: half a model file", damaged, "zero", "zip"),
    ),
    "susy": COMMON + (
        Handin("cleo", "saved its boosted trees under the logistic regression's name too", trees_as_logreg,
               "partial", "must hold a logistic regression"),
        Handin("dan", "the upload of the deep network broke off", damaged, "partial", "zip"),
    ),
}
# Kept for the sample edits' test (tests/test_demo.py): every notebook the demo edits.
SAMPLES: dict[str, tuple[Rerun, ...]] = {name: RERUNS[name] + ((HOSTILE[1],) if name == HOSTILE[0] else ())
                                        for name in RERUNS}


def make_rerun(sample: Rerun, assignment: course_config.Assignment, submitted: Path) -> None:
    """Write ``submitted/<student>/<assignment>/`` for a student whose notebook is re-executed."""
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


def make_handin(sample: Handin, assignment: course_config.Assignment, kept: Path, submitted: Path) -> None:
    """Write ``submitted/<student>/<assignment>/``: the release notebook and the files the student handed in."""
    dst = submitted / sample.student / assignment.name
    dst.mkdir(parents=True)
    shutil.copyfile(course_config.COURSE_DIR / "release" / assignment.name / assignment.notebook,
                    dst / assignment.notebook)
    sample.files(assignment, kept, dst)


def outcome_ok(sample: Rerun | Handin, result) -> bool:
    if sample.expect == "full" and result.score != result.max_score:
        return False
    if sample.expect == "zero" and result.score != 0:
        return False
    if sample.expect == "partial" and not 0 < result.score < result.max_score:
        return False
    # The expected words must explain lost points: in the notes, or in a check that did not earn all its points.
    text = result.output + "\n" + "\n".join(c.output for c in result.checks if c.score < c.points)
    return sample.expect_words in text


def report(reports, samples: dict[str, tuple]) -> bool:
    """Print each assignment's table and every sample's outcome; True if all are as expected."""
    all_ok = True
    for rep in reports:
        results = {r.student: r for r in rep.results}
        print(f"\n-- {rep.assignment}\n")
        print(table(rep.results))
        print()
        for sample in samples[rep.assignment]:
            if sample.student not in results:
                continue
            r = results[sample.student]
            ok = outcome_ok(sample, r)
            all_ok &= ok
            lost = [c.output for c in r.checks if c.score < c.points]
            why = (r.output.splitlines() or [""])[0] if sample.expect != "partial" or not lost else lost[0]
            print(f"  {sample.student:5} {sample.story:60} expected {sample.expect:7} "
                  f"got {r.score:g}/{r.max_score:g} {'ok' if ok else 'UNEXPECTED'}")
            if why:
                print(f"        {why.splitlines()[0][:150]}")
    return all_ok


def main(out: Path, assignments: list[str] | None = None, workers: int | None = None) -> int:
    start = time.monotonic()
    spent: dict[str, float] = {}
    names = assignments or [n for n in course_config.ASSIGNMENTS if n in RERUNS]
    out = out.resolve()
    for folder in ("rerun", "class", "gradebook.db"):
        path = out / folder
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    print(f"== 1. release/ and solutions/ built from source/ with nbgrader: {', '.join(names)}")
    t = time.monotonic()
    for path in release.release(names):
        print(f"   wrote {path}/")
    spent["release (nbgrader generate_assignment, generate_solution)"] = time.monotonic() - t

    quick = course_config.profile(PROFILE)
    rerun, rerun_out = out / "rerun" / "submitted", out / "rerun" / "graded"
    for name in names:
        for sample in RERUNS[name]:
            make_rerun(sample, course_config.assignment(name), rerun)
    count = sum(len(RERUNS[n]) for n in names)
    print(f"\n== 2. re-execution: {count} notebook(s) run top to bottom in the sandbox, --execute --profile {PROFILE} "
          f"(time limit {quick.execute_time_limit_s} s each); the model files each run saves are kept")
    t = time.monotonic()
    order = [n for n in RERUNS if n in names]  # the longest notebook first, the others beside it
    reports = batch.grade_assignments({n: [s.student for s in RERUNS[n]] for n in order}, rerun, rerun_out,
                                      execute=True, profile_name=PROFILE, workers=workers)
    spent[f"re-execution ({count} notebooks, --execute --profile {PROFILE})"] = time.monotonic() - t
    all_ok = report(reports, RERUNS)

    hostile_name, hostile = HOSTILE
    if hostile_name in names:
        print(f"\n== 3. a hostile notebook: {hostile.story}; stopped by a time limit of {HOSTILE_TIME_LIMIT_S} s, "
              f"sized for the demo (the {PROFILE} profile's is {quick.execute_time_limit_s} s)")
        make_rerun(hostile, course_config.assignment(hostile_name), rerun)
        t = time.monotonic()
        reports = batch.grade_assignments(
            {hostile_name: [hostile.student]}, rerun, rerun_out, execute=True, workers=1,
            profile=dataclasses.replace(quick, execute_time_limit_s=HOSTILE_TIME_LIMIT_S))
        spent[f"hostile notebook (time limit {HOSTILE_TIME_LIMIT_S} s)"] = time.monotonic() - t
        all_ok &= report(reports, {hostile_name: (hostile,)})

    # The class's files are made from what ada's re-runs saved (kept with her results).
    kept = rerun_out / "ada"
    submitted, graded = out / "class" / "submitted", out / "class" / "graded"
    students: dict[str, list[str]] = {}
    for name in names:
        for sample in HANDINS[name]:
            try:
                make_handin(sample, course_config.assignment(name), kept, submitted)
            except FileNotFoundError as exc:  # a model this demo's re-runs did not save (or, for a subset, did not run)
                missing = Path(exc.filename)
                print(f"   {sample.student} ({name}) left out: no {missing.name} from a re-run of {missing.parent.name}")
                all_ok &= missing.parent.name not in names
                continue
            students.setdefault(name, []).append(sample.student)
    count = sum(len(v) for v in students.values())
    print(f"\n== 4. the class graded from the files they handed in (the default mode, no re-execution): {count} "
          f"submissions, profile {PROFILE} (the models were trained under its parameters)")
    t = time.monotonic()
    reports = batch.grade_assignments(students, submitted, graded, profile_name=PROFILE, workers=workers)
    spent[f"saved models ({count} submissions)"] = time.monotonic() - t
    all_ok &= report(reports, HANDINS)

    print("\n== 5. feedback pages and the gradebook")
    t = time.monotonic()
    from autograder.exporters.gradebook import write_gradebook

    counts = write_gradebook([r for rep in reports for r in rep.results], str(out / "gradebook.db"))
    spent["gradebook (nbgrader's gradebook.db)"] = time.monotonic() - t
    print(f"   nbgrader gradebook {out / 'gradebook.db'}: {counts['students']} students, {counts['grades']} check grades "
          "(formgrader and `nbgrader export` read it)")
    for folder in (graded, rerun_out):
        print(f"   {folder}/<student>/<assignment>/feedback.html (and .md, results.json), "
              f"{folder}/grades.csv, {folder}/summary.md")
    example = graded / "cleo" / names[0] / "feedback.html"
    if example.is_file():
        print(f"   open one: {example}")

    total = time.monotonic() - start
    print("\n== where the time went")
    for what, seconds in spent.items():
        print(f"   {seconds:6.1f} s  {what}")
    print(f"   {total - sum(spent.values()):6.1f} s  the rest (making the sample submissions, printing)")
    print(f"   {total:6.1f} s  in all ({total / 60:.1f} min); "
          + ("every outcome as expected" if all_ok else "SOME OUTCOMES UNEXPECTED"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output")))
