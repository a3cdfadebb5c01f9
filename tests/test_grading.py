"""Grading saved models (the default mode): every check, messages, and the result files."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

import course_config
from autograder import batch
from autograder.datasets.tasks import load_task
from autograder.grading import execute, submission
from tests.helpers import make_submission

A = course_config.MNIST_DENSE


@pytest.fixture(scope="module")
def graded(models_dir, tmp_path_factory):
    """One class graded once (profile quick): a student per situation a TA meets."""
    root = tmp_path_factory.mktemp("submitted")
    m = A.model_file
    make_submission(root, "alice", A.name, {m: models_dir / "dense.keras", A.notebook: "{}"})
    make_submission(root, "bob", A.name, {m: models_dir / "no_softmax.keras"})
    make_submission(root, "carol", A.name, {m: models_dir / "conv.keras"})
    make_submission(root, "dan", A.name, {m: models_dir / "lambda.keras"})
    make_submission(root, "erin", A.name, {m: models_dir / "legacy.h5"})  # an .h5 file under the .keras name
    make_submission(root, "fiona", A.name, {"mnist_dense.h5": models_dir / "legacy.h5"})  # model.save("mnist_dense.h5")
    make_submission(root, "frank", A.name, {A.notebook: "{}"})
    make_submission(root, "gina", A.name, {m: models_dir / "flat_input.keras"})
    hank = make_submission(root, "hank", A.name, {})
    os.symlink(os.environ.get("COURSE_DATA_DIR", "/") + "/mnist.npz", hank / m)
    (root / "ivan").mkdir()  # a student folder without this assignment
    out = tmp_path_factory.mktemp("out")
    results = batch.grade(A.name, root, out, profile_name="quick").results
    return {r.student: r for r in results}, out


def scores(result):
    return {c.id: c.score for c in result.checks}


def outputs(result):
    return {c.id: c.output for c in result.checks}


def keras_accuracy(path, mnist):
    import keras

    (_, _), (x_test, y_test) = mnist
    model = keras.saving.load_model(path)
    x = x_test.astype("float32") / 255.0
    x = x.reshape((len(x),) + model.input_shape[1:])
    return float(np.mean(model.predict(x, verbose=0).argmax(1) == y_test))


def test_good_dense_model_passes_architecture_and_accuracy_matches_keras(graded, models_dir, mnist):
    results, _ = graded
    alice = results["alice"]
    s = scores(alice)
    assert s["layer_types"] == 1 and s["hidden_layer"] == 1 and s["output_layer"] == 1 and s["param_budget"] == 1
    acc = keras_accuracy(models_dir / "dense.keras", mnist)
    threshold = A.threshold("quick", "test_accuracy")
    assert s["test_accuracy"] == pytest.approx(6 * threshold.fraction(acc))
    assert f"test accuracy {acc:.4f}" in outputs(alice)["test_accuracy"]


def test_missing_softmax_loses_exactly_the_output_check(graded):
    bob = graded[0]["bob"]
    s = scores(bob)
    assert s["output_layer"] == 0 and s["layer_types"] == 1 and s["hidden_layer"] == 1 and s["param_budget"] == 1
    assert outputs(bob)["output_layer"] == (
        "output layer must be Dense(10, softmax) so that the model outputs class probabilities; found Dense(10, linear)"
    )


def test_conv_layers_fail_the_fully_connected_checks(graded):
    carol = graded[0]["carol"]
    s = scores(carol)
    assert s["layer_types"] == 0 and s["hidden_layer"] == 0 and s["output_layer"] == 1
    assert "found Conv2D" in outputs(carol)["layer_types"]


@pytest.mark.parametrize("student, words", [
    ("dan", "Lambda layer, which carries Python code"),
    ("frank", "model file mnist_dense.keras not found: run the notebook's save cell"),
    ("hank", "model file mnist_dense.keras not found"),
    ("ivan", "no submission found at ivan/mnist_dense/"),
])
def test_unusable_submissions_score_zero_with_a_clear_message(graded, student, words):
    result = graded[0][student]
    assert result.score == 0
    for c in result.checks:
        assert words in c.output


@pytest.mark.parametrize("student", ["erin", "fiona"])
def test_legacy_h5_models_are_graded_like_keras_scores_them(graded, models_dir, mnist, student):
    """model.save("mnist_dense.h5") from a tutorial: read without deserializing, graded by the NumPy
    engine, the same accuracy as Keras', and the feedback says which file was graded."""
    result = graded[0][student]
    s = scores(result)
    assert s["layer_types"] == s["hidden_layer"] == s["output_layer"] == 1
    assert result.extra["metrics"]["test_accuracy"] == pytest.approx(keras_accuracy(models_dir / "legacy.h5", mnist), abs=5e-4)
    assert result.extra["models"]["model"]["engine"] == "numpy"
    if student == "fiona":
        assert result.extra["models"]["model"]["file"] == "mnist_dense.h5"
        assert "graded mnist_dense.h5, the legacy HDF5 (.h5) twin of mnist_dense.keras" in result.output
        assert result.details["model"]["file"] == "mnist_dense.h5"


def test_symlinks_are_never_followed(graded):
    assert "is a symbolic link and was ignored" in graded[0]["hank"].output


def test_flat_input_models_are_fed_flat_images(graded):
    gina = graded[0]["gina"]
    assert scores(gina)["layer_types"] == 1
    assert "test accuracy" in outputs(gina)["test_accuracy"]


def test_results_json_is_gradescope_format(graded):
    results, out = graded
    data = json.loads((out / "bob" / A.name / "results.json").read_text())
    assert data["score"] == results["bob"].score and data["max_score"] == A.max_score
    assert [t["name"] for t in data["tests"]] == [c.title for c in A.checks]
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "visibility"}
    assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])
    feedback = (out / "bob" / A.name / "feedback.md").read_text()
    assert "[FAIL] output layer is Dense(10, softmax): 0/1" in feedback


def test_results_record_what_each_prediction_job_used(graded):
    # A TA looking for a slow or memory-hungry model finds its prediction job's usage in extra_data.
    results, out = graded
    data = json.loads((out / "alice" / A.name / "results.json").read_text())
    used = data["extra_data"]["models"]["model"]["prediction"]
    assert used["seconds"] > 0 and used["cpu_seconds"] > 0 and used["peak_memory_mb"] > 10
    assert used["sandbox"] == results["alice"].extra["sandbox"]
    # ... and where its time went, from the child's own clock: the steps add up to the job's wall time.
    phases = used["phases"]
    assert list(phases) == ["start", "imports", "read_model", "forward", "write", "end"], phases
    assert phases["forward"] > 0 and abs(sum(phases.values()) - used["seconds"]) < 0.1, (phases, used)
    assert "prediction" not in results["frank"].extra.get("models", {}).get("model", {})  # no model, no job


def test_grades_csv_has_a_row_per_student_and_a_column_per_check(graded):
    results, out = graded
    with open(out / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == sorted(results)
    assert list(rows[0]) == ["student", "assignment", "score", "max_score", "flagged"] + [c.id for c in A.checks]
    bob = next(r for r in rows if r["student"] == "bob")
    assert float(bob["score"]) == results["bob"].score and bob["output_layer"] == "0"


def test_a_grader_error_costs_only_that_student(monkeypatch, tmp_path, models_dir):
    root = tmp_path / "submitted"
    make_submission(root, "ok", A.name, {A.model_file: models_dir / "lambda.keras"})
    make_submission(root, "boom", A.name, {A.model_file: models_dir / "lambda.keras"})
    real = submission.grade_submission

    def flaky(student, *args, **kwargs):
        if student == "boom":
            raise RuntimeError("disk on fire")
        return real(student, *args, **kwargs)

    monkeypatch.setattr(submission, "grade_submission", flaky)
    report = batch.grade(A.name, root, tmp_path / "out", profile_name="quick", workers=1)
    results = {r.student: r for r in report.results}
    assert "internal grader error (RuntimeError: disk on fire)" in results["boom"].output
    assert "Lambda" in results["ok"].checks[0].output
    assert (tmp_path / "out" / "ok" / A.name / "results.json").exists()
    assert (tmp_path / "out" / "boom" / A.name / "results.json").exists()


def test_parameters_are_injected_after_the_parameters_cell():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("intro"),
        nbformat.v4.new_code_cell("EPOCHS = 10", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("fit(EPOCHS)"),
    ])
    index = execute.inject_parameters(nb, {"EPOCHS": 2}, "quick")
    assert index == 2
    assert "EPOCHS = 2" in nb.cells[2].source
    nbformat.validate(nb)


def spelled(tmp_path, name, *layers):
    """A dense network spelled one of the ways textbooks write it, trained one epoch, saved."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), *layers])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, tmp_path / f"{name}.keras"


@pytest.fixture(scope="module")
def spellings(mnist, tmp_path_factory):
    """The same network in four spellings, graded as a batch."""
    import keras
    import tensorflow as tf

    L = keras.layers
    (x_train, y_train), (x_test, y_test) = mnist
    d = tmp_path_factory.mktemp("spellings")
    variants = {
        "mlp": [L.Dense(32), L.Activation("relu"), L.Dropout(0.2), L.Dense(10), L.Activation("softmax")],
        "layers": [L.Dense(32), L.ReLU(), L.Dense(10), L.Softmax()],
        "tf_functions": [L.Dense(32, activation=tf.nn.relu), L.Dense(10, activation=tf.nn.softmax)],
        "none_then_layer": [L.Dense(32, activation=None), L.Activation("relu"), L.Dense(10, activation="softmax")],
    }
    root = d / "submitted"
    own = {}  # each model's accuracy as its own Keras scores it (Keras cannot reload tf.nn.softmax)
    for name, layers in variants.items():
        model, path = spelled(d, name, *layers)
        model.fit(x_train[:3000] / 255.0, y_train[:3000], epochs=1, batch_size=128, verbose=0)
        model.save(path)
        own[name] = float(np.mean(model.predict(x_test / 255.0, verbose=0).argmax(1) == y_test))
        make_submission(root, name, A.name, {A.model_file: path})
    results = batch.grade(A.name, root, d / "out", profile_name="quick").results
    return {r.student: r for r in results}, own


@pytest.mark.parametrize("student", ["mlp", "layers", "tf_functions", "none_then_layer"])
def test_a_network_is_judged_not_its_spelling(spellings, mnist, student):
    """Dense(32) + Activation("relu") (keras' classic mnist_mlp), ReLU()/Softmax() layers,
    activation=tf.nn.softmax: each the network Dense(32, relu) -> Dense(10, softmax)."""
    results, own = spellings
    result = results[student]
    s = scores(result)
    for check in ("layer_types", "hidden_layer", "output_layer", "param_budget"):
        assert s[check] == 1, (check, outputs(result)[check])
    assert "internal" not in " ".join(outputs(result).values())
    assert result.extra["models"]["model"]["engine"] == "numpy"
    assert result.extra["metrics"]["test_accuracy"] == pytest.approx(own[student], abs=5e-4)


def test_an_activation_no_framework_explains_is_named(tmp_path, models_dir):
    """A function activation with an unknown name: the checks that need it say which layer and value."""
    import zipfile

    src = models_dir / "dense.keras"
    path = tmp_path / A.model_file
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                layer = config["config"]["layers"][-1]["config"]["name"]
                config["config"]["layers"][-1]["config"]["activation"] = {
                    "module": "builtins", "class_name": "function", "config": "my_softmax", "registered_name": "function"}
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    root = tmp_path / "submitted"
    make_submission(root, "zoe", A.name, {A.model_file: path})
    result = submission.grade_submission("zoe", root / "zoe" / A.name, A, load_task(A, course_config.profile("quick")),
                                         profile=course_config.profile("quick"))
    out = outputs(result)["output_layer"]
    assert scores(result)["output_layer"] == 0
    assert f"unrecognised activation function 'my_softmax' in layer '{layer}'" in out, out
    assert "internal" not in " ".join(outputs(result).values())


def grade_folder(tmp_path, files: dict, student="yuki"):
    root = tmp_path / "submitted"
    make_submission(root, student, A.name, files)
    quick = course_config.profile("quick")
    return submission.grade_submission(student, root / student / A.name, A, load_task(A, quick), profile=quick)


def test_a_file_from_a_newer_keras_gets_its_version_and_what_to_do(tmp_path, models_dir):
    """A config key the pinned Keras does not know (a newer Keras wrote it): no internal error, but the
    version that saved it, what the grader tried, and what to do."""
    import zipfile

    path = tmp_path / "newer.keras"
    with zipfile.ZipFile(models_dir / "dense.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][2]["config"]["sparsity_schedule"] = "cubic"  # an option from the future
                data = json.dumps(config).encode()
            if item.filename == "metadata.json":
                data = json.dumps({**json.loads(data), "keras_version": "3.99.0"}).encode()
            zout.writestr(item, data)
    result = grade_folder(tmp_path, {A.model_file: path})
    out = outputs(result)["test_accuracy"]
    assert scores(result)["test_accuracy"] == 0
    assert "was saved by Keras 3.99.0, newer than the grader's Keras 3.15.1" in out and "'sparsity_schedule'" in out
    assert "Save the model with Keras 3.0-3.15.1" in out
    assert "internal" not in out and "Traceback" not in out


@pytest.mark.parametrize("files, words", [
    ({"mnist_dense/saved_model.pb": b"x", "mnist_dense/variables/variables.index": b"x"},
     "mnist_dense/ is a TensorFlow SavedModel folder"),
    ({"model.pt": b"PK\x03\x04"}, "model.pt is a PyTorch file. Rebuild the network in Keras (the notebook's cells)"),
    ({"mnist_dense.weights.h5": b"\x89HDF\r\n\x1a\n"}, "mnist_dense.weights.h5 holds weights only (model.save_weights)"),
])
def test_other_model_formats_are_named(tmp_path, files, words):
    result = grade_folder(tmp_path, files)
    assert result.score == 0
    for c in result.checks:
        assert words in c.output and 'model.save("mnist_dense.keras")' in c.output, c.output


def test_a_prediction_jobs_clock_is_trusted_only_when_sane():
    """The child writes its clock readings; a model cannot run code there, but the grader reads them as untrusted."""
    from autograder.grading.predict import job_phases

    clock = {"started": 100.1, "imported": 100.2, "read": 100.25, "predicted": 101.0, "written": 101.01}
    assert job_phases(clock, 100.0, 1.05) == {"start": 0.1, "imports": 0.1, "read_model": 0.05, "forward": 0.75,
                                              "write": 0.01, "end": 0.04}
    for bad in ({**clock, "read": "soon"}, {**clock, "predicted": float("inf")}, {**clock, "written": 90.0},
                {k: v for k, v in clock.items() if k != "imported"}, ["not", "a", "dict"], None):
        assert job_phases(bad, 100.0, 1.05) == {}, bad
    assert job_phases(clock, 0.0, 1.05) == {}  # no start time recorded
