"""Model files as students really make them, graded as their own Keras scores them.

The files in tests/model_files/ were saved by other Keras versions and backends (3.0.5 on JAX, 3.4.1 on
TensorFlow 2.17, 3.10, 3.15.1 on JAX and PyTorch, Keras 2.15 and tf_keras 2.21, .keras and .h5, mixed
precision, textbook spellings): see tests/model_files/README.md and bench/model_files.py, which made
them and recorded each producer's own accuracy (or ROC AUC) on the grader's test inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import course_config
from autograder import batch, keras_numpy
from autograder.keras_numpy.architecture import h5_twin
from tests.helpers import make_submission

FIXTURES = Path(__file__).with_name("model_files")
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())["files"]
PROFILE = {"mnist": "full", "susy": "quick"}  # saved models are graded under full; SUSY's quick test events are simulated
METRIC = {"accuracy": "test_accuracy", "roc_auc": "dnn_auc"}


def student(entry) -> str:
    return entry["file"].replace(".", "_")


@pytest.fixture(scope="module")
def graded(tmp_path_factory, mnist):
    """Every fixture handed in by a student of its assignment, under the name the notebook saves
    (its .h5 twin for an .h5 file), graded as one batch per assignment."""
    out = tmp_path_factory.mktemp("out")
    results = {}
    for name in sorted({e["assignment"] for e in MANIFEST}):
        root = tmp_path_factory.mktemp(f"submitted_{name}")
        a = course_config.assignment(name)
        spec = next(s for s in a.models if s.name == "model" or s.name == "dnn")
        for e in (e for e in MANIFEST if e["assignment"] == name):
            target = h5_twin(spec.file) if e["file"].endswith(".h5") else spec.file
            make_submission(root, student(e), name, {target: FIXTURES / e["file"]})
        report = batch.grade(name, root, out / name, profile_name=PROFILE[a.dataset], workers=2)
        results.update({r.student: r for r in report.results})
    return results


def test_the_fixtures_cover_what_the_issue_asks():
    producers = {e["producer"] for e in MANIFEST}
    versions = {e["versions"]["keras"] for e in MANIFEST}
    backends = {e["versions"]["backend"] for e in MANIFEST}
    assert {"3.0.5", "3.4.1", "3.15.1"} <= versions and len({v for v in versions if v.startswith("3.")}) >= 3
    assert {"tensorflow", "jax", "torch"} <= backends
    assert any(v.startswith("2.") for v in versions)  # Keras 2 / tf_keras
    assert any(e["file"].endswith(".h5") for e in MANIFEST)
    assert any("mixed_float16" in e["variant"] for e in MANIFEST) and any("bfloat16" in e["variant"] for e in MANIFEST)
    assert {"dense_activation_layers", "dense_relu_softmax_layers", "dense_tf_softmax"} <= {e["variant"] for e in MANIFEST}
    assert len(producers) >= 7
    assert sum((FIXTURES / e["file"]).stat().st_size for e in MANIFEST) < 1_000_000  # small committed fixtures


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_graded_as_the_producer_scores_it(graded, entry):
    """The grader's figure equals the producer's own within 5 images in 10,000 (0.0005), by the NumPy
    engine (no Keras in the sandbox, mixed precision included), with no check lost to the file's origin."""
    result = graded[student(entry)]
    metric = METRIC[entry["metric"]]
    outputs = {c.id: c.output for c in result.checks}
    assert metric in result.extra.get("metrics", {}), outputs
    assert abs(result.extra["metrics"][metric] - entry["value"]) <= 0.0005, (result.extra["metrics"][metric], entry["value"])
    model = result.extra["models"]["dnn" if entry["assignment"] == "susy" else "model"]
    assert model["engine"] == "numpy", model["engine"]
    a = course_config.assignment(entry["assignment"])
    architecture = [c.id for c in a.checks if c.id not in a.thresholds[PROFILE[a.dataset]]
                    and a.model_of(c.id).name == ("dnn" if a.dataset == "susy" else "model")]
    failed = {c.id: c.output for c in result.checks if c.id in architecture and c.score < c.points}
    assert not failed, failed
    assert "internal" not in " ".join(outputs.values())


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_first_outputs_match_the_producers(entry, mnist):
    """The engine's outputs on the first test inputs are the producer's own (to float16's precision for
    mixed-precision models, float32's otherwise)."""
    if entry["assignment"] == "susy":
        from autograder.datasets.tasks import SusyTask

        x = SusyTask(course_config.profile("quick")).prediction_inputs()[:3]
    else:
        _, (x_test, _) = mnist
        x = (x_test[:3].astype("float32") / 255.0).reshape((3, *entry["input_shape"]))
    got = keras_numpy.load(FIXTURES / entry["file"]).predict(x)
    tolerance = 2e-2 if "bfloat16" in entry["variant"] else 2e-3 if "float16" in entry["variant"] else 2e-5
    np.testing.assert_allclose(got.reshape(3, -1), np.asarray(entry["first_outputs"]).reshape(3, -1), atol=tolerance)


def test_h5_and_keras_twins_are_one_model(tmp_path):
    """The same file read under its .h5 twin name is graded as the .keras name would be."""
    h5 = next(e for e in MANIFEST if e["file"].endswith(".h5"))
    shutil.copyfile(FIXTURES / h5["file"], tmp_path / "m.h5")
    x = np.random.default_rng(0).random((5, *h5["input_shape"]), dtype=np.float32)
    assert np.array_equal(keras_numpy.load(tmp_path / "m.h5").predict(x), keras_numpy.load(FIXTURES / h5["file"]).predict(x))
