"""A fifth assignment by description alone: an instructor adds a dataset and an assignment, and the kit grades it.

A copy of the course gets two datasets it has never seen, described in its ``course_config.py`` and
nothing else: scikit-learn's 8 x 8 digits (accuracy) and its diabetes progression (a regression scored
by mean absolute error, lower is better). For each, the instructor's steps as docs/notebook_contract.md
gives them: ``autograder new`` writes the source notebook, the instructor fills in the solution,
``autograder release`` builds the student's version with nbgrader; then students hand in the solution
run in full, the same run too short, and the untouched release, and ``autograder grade`` and
``autograder check`` judge them. The kit's code in the copy stays byte for byte the repository's.

The thresholds below are calibrated on the solutions as written here (5 seeds, this machine, 2 cores):
digits with 20 epochs reach test accuracy 0.960-0.967, with 2 epochs 0.724-0.822; diabetes with 40 epochs a
test MAE of 45.4-46.2, with 3 epochs 53.2-54.3, and predicting the training mean 61.0.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

DESCRIBED = '''

# --------------------------------------------------------------------------------------------
# Added by an instructor: two datasets and two assignments, described (tests/test_new_assignment.py)
# --------------------------------------------------------------------------------------------
DIGITS = Dataset(name="digits", title="scikit-learn's 8 x 8 digits", loader="sklearn.datasets:load_digits",
                 loader_args={"return_X_y": True}, metric="accuracy", scale=16.0, noun="images")
DIGITS_DENSE = Assignment(
    name="digits_dense", title="Small digits with a dense network", notebook="digits_dense.ipynb",
    models=(ModelSpec("model", "digits_dense.keras"),), dataset=DIGITS,
    checks=(Check("hidden_layer", "at least one hidden Dense layer with a nonlinear activation", 1),
            Check("output_layer", "output layer is Dense(10, softmax)", 1),
            Check("test_accuracy", "accuracy on the hidden test digits", 4)),
    parameters={"full": {"EPOCHS": 20}, "quick": {"EPOCHS": 20}},
    thresholds={p: {"test_accuracy": Threshold((Tier(0.95, 1.0), Tier(0.70, 0.5)), source="20 epochs over 5 seeds: "
                                               "min 0.960 minus 0.01; 2 epochs: min 0.724 minus 0.02")}
                for p in ("full", "quick")},
    helpers=HELPERS,
)
DIABETES = Dataset(name="diabetes", title="scikit-learn's diabetes progression", loader="sklearn.datasets:load_diabetes",
                   loader_args={"return_X_y": True}, metric="mean_absolute_error", noun="patients")
DIABETES_DENSE = Assignment(
    name="diabetes_dense", title="Disease progression with a small network", notebook="diabetes_dense.ipynb",
    models=(ModelSpec("model", "diabetes_dense.keras"),), dataset=DIABETES,
    checks=(Check("param_budget", "at most 10,000 parameters", 1),
            Check("test_mae", "mean absolute error on the hidden test patients", 4)),
    max_params=10_000,
    parameters={"full": {"EPOCHS": 40}, "quick": {"EPOCHS": 40}},
    thresholds={p: {"test_mae": Threshold((Tier(47.5, 1.0), Tier(58.0, 0.5)), lower_is_better=True,
                                          source="40 epochs over 5 seeds: max 46.2 plus 1.3; 3 epochs: max 54.3 "
                                                 "plus 3.7, below the training mean's 61.0")}
                for p in ("full", "quick")},
    helpers=HELPERS,
)
ASSIGNMENTS.update({a.name: a for a in (DIGITS_DENSE, DIABETES_DENSE)})
'''

SOLUTIONS = {
    "digits_dense": (
        "def build_model():\n    ### BEGIN SOLUTION\n    model = keras.Sequential([keras.Input(shape=(64,)),\n"
        "                              keras.layers.Dense(64, activation=\"relu\"),\n"
        "                              keras.layers.Dense(10, activation=\"softmax\")])\n    ### END SOLUTION\n"
        "    return model\n\n\nmodel = build_model()\nmodel.summary()",
        "### BEGIN SOLUTION\nmodel.compile(optimizer=\"adam\", loss=\"sparse_categorical_crossentropy\", "
        "metrics=[\"accuracy\"])\nmodel.fit(x_fit, y_fit, epochs=EPOCHS, batch_size=32, verbose=0)\n### END SOLUTION\n"
        "print(model.evaluate(x_val, y_val, verbose=0))",
        2,  # the short run's epochs
    ),
    "diabetes_dense": (
        "def build_model():\n    ### BEGIN SOLUTION\n    model = keras.Sequential([keras.Input(shape=(10,)),\n"
        "                              keras.layers.Dense(32, activation=\"relu\"), keras.layers.Dense(1)])\n"
        "    ### END SOLUTION\n    return model\n\n\nmodel = build_model()\nmodel.summary()",
        "### BEGIN SOLUTION\nmodel.compile(optimizer=keras.optimizers.Adam(0.1), loss=\"mae\")\n"
        "model.fit(x_fit, y_fit, epochs=EPOCHS, batch_size=16, verbose=0)\n### END SOLUTION\n"
        "print(model.evaluate(x_val, y_val, verbose=0))",
        3,
    ),
}
# A check's line in the output of the check before hand-in.
CHECK_LINE = re.compile(r"^  [✓~✗] (?P<id>\w+) \((?P<points>[\d.]+) of [\d.]+ pt\): (?P<rest>.*)$", re.M)
# Points: (solution, short run, untouched release), as the thresholds above give them.
EXPECTED = {"digits_dense": (6.0, 4.0, 0.0), "diabetes_dense": (5.0, 3.0, 0.0)}


def kit_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "autograder").rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def autograder(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def run_notebook(folder: Path, notebook: str, epochs: int | None = None) -> None:
    """Run a notebook in its folder as a student would (Run all), with fewer epochs for the short run."""
    path = folder / notebook
    nb = nbformat.read(path, as_version=4)
    if epochs is not None:
        cell = next(c for c in nb.cells if "parameters" in (c.metadata.get("tags") or []))
        cell.source += f"\nEPOCHS = {epochs}"
        nbformat.write(nb, path)
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                           "--ExecutePreprocessor.timeout=600", notebook], cwd=folder, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="class")
def course(tmp_path_factory) -> Path:
    """A copy of the course (its tracked files, the shipped releases left out) with the two assignments added."""
    root = tmp_path_factory.mktemp("course")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        if name.split("/")[0] in ("release", "solutions", "tests", "bench") or not (ROOT / name).is_file():
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, root / name)
    with open(root / "course_config.py", "a") as f:
        f.write(DESCRIBED)
    return root


# A class per assignment: pytest-xdist (--dist loadscope) runs the two on both cores.
@pytest.mark.slow
class TestDigits:
    def test_an_assignment_added_by_description_is_released_and_graded(self, course, tmp_path):
        released_and_graded(course, "digits_dense", tmp_path)


@pytest.mark.slow
class TestDiabetes:
    def test_an_assignment_added_by_description_is_released_and_graded(self, course, tmp_path):
        released_and_graded(course, "diabetes_dense", tmp_path)


def released_and_graded(course: Path, name: str, tmp_path: Path) -> None:
    """The instructor's steps and the students' hand-ins for ``name``, graded and checked."""
    before = kit_digest(course)
    # The instructor: a notebook that follows the contract, the solution written into it, released with nbgrader.
    autograder(course, "new", name)
    source = course / "source" / name / f"{name}.ipynb"
    nb = nbformat.read(source, as_version=4)
    build, train, short = SOLUTIONS[name]
    for cell in nb.cells:
        grade = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.source = {"build_model": build, "train": train}.get(grade, cell.source)
    nbformat.write(nb, source)
    autograder(course, "release", name)
    release = json.loads((course / "release" / name / f"{name}.ipynb").read_text())
    assert "### BEGIN SOLUTION" not in json.dumps(release) and "raise NotImplementedError" in json.dumps(release)

    # The students: the solution run in full, the same run short, and the untouched release.
    submitted = tmp_path / "submitted"
    for student in ("full", "short"):
        folder = submitted / student / name
        shutil.copytree(course / "solutions" / name, folder)
        run_notebook(folder, f"{name}.ipynb", None if student == "full" else short)
    shutil.copytree(course / "release" / name, submitted / "untouched" / name)

    # The grader, by the assignment's own metric and thresholds.
    out = tmp_path / "out"
    autograder(course, "grade", name, str(submitted), "--out", str(out))
    scores = {s: json.loads((out / s / name / "results.json").read_text())["score"] for s in ("full", "short",
                                                                                             "untouched")}
    assert (scores["full"], scores["short"], scores["untouched"]) == EXPECTED[name], scores
    short_result = json.loads((out / "short" / name / "results.json").read_text())
    metric_test = next(t for t in short_result["tests"] if t["tags"][0] in ("test_accuracy", "test_mae"))
    word = "accuracy" if name == "digits_dense" else "mean absolute error"
    assert word in metric_test["output"] and ("<=" in metric_test["output"]) == (name == "diabetes_dense"), metric_test

    # The student's check before hand-in predicts the grader's points from the validation split: the same points
    # for every check, unless it says that the figure lies within its uncertainty of a tier.
    for student in ("full", "short"):
        check = autograder(course, "check", name, str(submitted / student / name), check=False)
        graded = {t["tags"][0]: t["score"] for t in json.loads((out / student / name / "results.json").read_text())["tests"]}
        predicted = {m["id"]: (float(m["points"]), m["rest"]) for m in map(re.Match.groupdict, CHECK_LINE.finditer(check.stdout))}
        assert set(predicted) == set(graded), check.stdout
        for check_id, (points, rest) in predicted.items():
            assert points == graded[check_id] or "may fall on either side" in rest, (student, check_id, check.stdout)
        assert "Not judged here" not in check.stdout and f"{word} " in check.stdout, check.stdout

    if name == "digits_dense":  # re-executed in the sandbox, the notebook reads the rows the grader gives it
        executed = tmp_path / "executed"
        autograder(course, "grade", name, str(submitted), "--out", str(executed), "--execute", "--profile", "quick",
                   "--student", "full")
        result = json.loads((executed / "full" / name / "results.json").read_text())
        assert result["score"] == EXPECTED[name][0], result
    assert kit_digest(course) == before == kit_digest(ROOT)  # no change to the kit's code


def digits_assignment(**changes):
    """The digits assignment above, made in this process."""
    import course_config

    namespace = vars(course_config).copy()
    exec(DESCRIBED.replace("ASSIGNMENTS.update", "dict"), namespace)  # the configuration's own text, in a copy
    import dataclasses

    return dataclasses.replace(namespace["DIGITS_DENSE"], **changes)


def test_a_check_nothing_would_grade_stops_the_release():
    """A check without a test of its own that is neither an architecture check nor has thresholds is refused
    before any student sees it, never graded as an internal error."""
    import course_config
    from autograder.release import unchecked

    a = digits_assignment(checks=digits_assignment().checks + (course_config.Check("tidy_code", "tidy code", 1),))
    problems = unchecked(a)
    assert len(problems) == 1 and "check 'tidy_code' is neither an architecture check" in problems[0], problems
    assert "none in full, quick" in problems[0] and "autograder/checks/test_digits_dense.py" in problems[0]
    assert unchecked(digits_assignment()) == []


def test_a_described_dataset_is_split_the_same_on_both_sides_and_the_sandbox_has_no_test_labels(tmp_path, monkeypatch):
    """The notebook's loader (course_data.load_dataset) and the grader's task split the rows alike; in the
    sandbox the notebook reads the task's file, which holds no test labels; the check's validation split is the
    notebook's last rows of training data, scaled as the grader scales."""
    import numpy as np

    import course_config
    from autograder.course_data import dataset_validation, load_dataset
    from autograder.datasets.tasks import load_task

    a = digits_assignment()
    task = load_task(a, course_config.profile("quick"))
    facts = a.described.as_facts()
    (x_train, y_train), (x_test, y_test) = load_dataset(facts)
    assert y_test is None and np.array_equal(x_test, task.x_test) and len(x_train) + len(x_test) == 1797
    assert len(task.x_test) == round(1797 * 0.25) and task.fingerprint() == load_task(a, course_config.profile("full")).fingerprint()
    monkeypatch.setenv("COURSE_DATA_DIR", str(task.sandbox_data_dir()))
    with np.load(task.sandbox_data_dir() / "digits.npz") as f:
        assert sorted(f.files) == ["x_test", "x_train", "y_train"]
    (sx_train, sy_train), (sx_test, sy_test) = load_dataset(facts)
    assert sy_test is None and np.array_equal(sx_train, x_train) and np.array_equal(sx_test, x_test)
    x_val, y_val = dataset_validation(facts)
    n_val = round(len(x_train) * 0.2)
    assert np.array_equal(y_val, y_train[-n_val:]) and float(x_val.max()) == 1.0
    inputs = np.load(task.predict_data_dir() / "inputs.npy")
    assert inputs.dtype == np.float32 and inputs.shape == (len(x_test), 64) and float(inputs.max()) == 1.0
    task.close()
