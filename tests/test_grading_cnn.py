"""mnist_cnn and mnist_augment checks on real saved CNNs: each flaw loses exactly its points."""

from __future__ import annotations

import pytest

import course_config
from autograder import batch
from tests.helpers import make_submission

CNN, AUG = course_config.MNIST_CNN, course_config.MNIST_AUGMENT


def grade_one(tmp_path, assignment, model_path):
    root = tmp_path / "submitted"
    make_submission(root, "s", assignment.name, {assignment.model_file: model_path})
    (result,) = batch.grade(assignment.name, root, tmp_path / "out", profile_name="quick").results
    return {c.id: c for c in result.checks}


def architecture_points(checks):
    return {cid: c.score for cid, c in checks.items() if cid != "test_accuracy"}


def test_cnn_passes_every_architecture_check(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "cnn.keras")
    assert architecture_points(checks) == {c.id: c.points for c in CNN.checks if c.id != "test_accuracy"}
    assert "test accuracy" in checks["test_accuracy"].output


def test_cnn_without_pooling_loses_exactly_the_pooling_points(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "cnn_no_pooling.keras")
    points = architecture_points(checks)
    assert points.pop("pooling") == 0
    assert points == {c.id: c.points for c in CNN.checks if c.id not in ("test_accuracy", "pooling")}
    assert "add at least one pooling layer" in checks["pooling"].output


def test_dense_network_fails_the_cnn_checks(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "dense.keras")
    assert checks["conv_layers"].score == 0 and "found 0" in checks["conv_layers"].output
    assert checks["output_layer"].score == checks["output_layer"].points


def test_augmented_cnn_passes_every_architecture_check(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "cnn_augment.keras")
    assert architecture_points(checks) == {c.id: c.points for c in AUG.checks if c.id != "test_accuracy"}


def test_flip_layer_loses_exactly_the_no_flip_points(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "cnn_augment_flip.keras")
    points = architecture_points(checks)
    assert points.pop("no_flip") == 0
    assert points == {c.id: c.points for c in AUG.checks if c.id not in ("test_accuracy", "no_flip")}
    assert "remove RandomFlip" in checks["no_flip"].output


def test_cnn_without_augmentation_loses_the_augmentation_points(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "cnn.keras")
    assert checks["augmentation_layers"].score == 0
    assert "add RandomRotation, RandomTranslation, RandomZoom" in checks["augmentation_layers"].output
    assert checks["no_flip"].score == checks["no_flip"].points


@pytest.mark.parametrize("assignment", [CNN, AUG])
def test_accuracy_is_measured_with_augmentation_inactive(tmp_path, models_dir, assignment, mnist):
    """Random layers must not perturb the test images: the grader's accuracy equals Keras' own."""
    import keras
    import numpy as np

    path = models_dir / ("cnn_augment.keras" if assignment is AUG else "cnn.keras")
    checks = grade_one(tmp_path, assignment, path)
    (_, _), (x_test, y_test) = mnist
    model = keras.saving.load_model(path)
    acc = float(np.mean(model.predict((x_test / 255.0)[..., None], verbose=0).argmax(1) == y_test))
    assert f"test accuracy {acc:.4f}" in checks["test_accuracy"].output
