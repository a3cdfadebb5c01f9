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


METRICS = ("test_accuracy", "moved_accuracy")


def architecture_points(checks):
    return {cid: c.score for cid, c in checks.items() if cid not in METRICS}


def test_cnn_passes_every_architecture_check(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "cnn.keras")
    assert architecture_points(checks) == {c.id: c.points for c in CNN.checks if c.id not in METRICS}
    assert "test accuracy" in checks["test_accuracy"].output


def test_cnn_without_pooling_loses_exactly_the_pooling_points(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "cnn_no_pooling.keras")
    points = architecture_points(checks)
    assert points.pop("pooling") == 0
    assert points == {c.id: c.points for c in CNN.checks if c.id not in (*METRICS, "pooling")}
    assert "add at least one pooling layer" in checks["pooling"].output


def test_dense_network_fails_the_cnn_checks(tmp_path, models_dir):
    checks = grade_one(tmp_path, CNN, models_dir / "dense.keras")
    assert checks["conv_layers"].score == 0 and "found 0" in checks["conv_layers"].output
    assert checks["output_layer"].score == checks["output_layer"].points


def test_augmented_cnn_passes_every_architecture_check(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "cnn_augment.keras")
    assert architecture_points(checks) == {c.id: c.points for c in AUG.checks if c.id not in METRICS}


def test_flip_layer_loses_exactly_the_no_flip_points(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "cnn_augment_flip.keras")
    points = architecture_points(checks)
    assert points.pop("no_flip") == 0
    assert points == {c.id: c.points for c in AUG.checks if c.id not in (*METRICS, "no_flip")}
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


def test_moved_accuracy_is_measured_on_the_test_digits_moved_with_the_graders_seed(tmp_path, models_dir, mnist):
    """moved_accuracy is Keras' own accuracy on move_digits(test images, MOVED_DIGITS_SEED); the feedback shows it."""
    import keras
    import numpy as np

    from autograder.course_data import move_digits

    path = models_dir / "cnn_augment.keras"
    checks = grade_one(tmp_path, AUG, path)
    (_, _), (x_test, y_test) = mnist
    model = keras.saving.load_model(path)
    moved = move_digits(x_test, course_config.MOVED_DIGITS_SEED)
    acc = float(np.mean(model.predict((moved / 255.0)[..., None], verbose=0).argmax(1) == y_test))
    plain = float(np.mean(model.predict((x_test / 255.0)[..., None], verbose=0).argmax(1) == y_test))
    assert f"accuracy on the moved test digits {acc:.4f}" in checks["moved_accuracy"].output
    assert acc < plain  # a moved digit is harder, even for this small augmented CNN
    page = (tmp_path / "out" / "s" / AUG.name / "feedback.html").read_text()
    assert f"{100 * acc:.2f} %" in page and "misclassified moved digit: true" in page


def test_moved_accuracy_fails_with_the_model_problem_when_there_are_no_predictions(tmp_path, models_dir):
    checks = grade_one(tmp_path, AUG, models_dir / "dense.keras")  # (28, 28) input: fed, but not a CNN
    assert checks["moved_accuracy"].output.startswith("accuracy on the moved test digits")
    root = tmp_path / "broken"
    make_submission(root, "s", AUG.name, {AUG.model_file: b"not a zip file"})
    (result,) = batch.grade(AUG.name, root, tmp_path / "out2", profile_name="quick").results
    checks = {c.id: c for c in result.checks}
    assert checks["moved_accuracy"].score == 0 and checks["test_accuracy"].score == 0
    assert checks["moved_accuracy"].output == checks["test_accuracy"].output


def test_moved_test_set_follows_the_graders_seed_and_keeps_its_labels(mnist, monkeypatch):
    """mnist_augment's task holds the test digits and the same digits moved; the sandbox gets both, no labels."""
    import numpy as np

    from autograder.course_data import move_digits
    from autograder.datasets.tasks import load_task

    quick = course_config.profile("quick")
    (_, _), (x_test, y_test) = mnist
    plain, moved = load_task(CNN, quick), load_task(AUG, quick)
    try:
        assert plain.test_sets == ("test",) and moved.test_sets == ("test", "moved")
        inputs = moved.prediction_inputs()
        # the test digits, the moved digits, then the first 500 test digits as raw 0-255 pixels (the scale probe)
        assert inputs.shape == (20500, 28, 28) and plain.prediction_inputs().shape == (10500, 28, 28)
        assert np.array_equal(inputs[20000:], x_test[:500].astype(np.float32))
        expected = move_digits(x_test, course_config.MOVED_DIGITS_SEED)
        assert np.array_equal(np.rint(inputs[10000:20000] * 255).astype(np.uint8), expected)
        assert np.array_equal(moved.labels_of("moved"), y_test)
        outputs = np.arange(20500 * 10, dtype=np.float32).reshape(20500, 10)
        parts = moved.split(moved.check_predictions(AUG.models[0], outputs))
        assert list(parts) == ["test", "moved", "scale_probe"] and np.array_equal(parts["moved"], outputs[10000:20000])
        with pytest.raises(ValueError, match="shape \\(10000, 10\\) for 20,500 images; expected \\(20500, 10\\)"):
            moved.check_predictions(AUG.models[0], outputs[:10000])
        assert plain.fingerprint() != moved.fingerprint()
        fingerprint = moved.fingerprint()
    finally:
        plain.close()
        moved.close()
    monkeypatch.setattr(course_config, "MOVED_DIGITS_SEED", course_config.MOVED_DIGITS_SEED + 1)
    reseeded = load_task(AUG, quick)
    assert reseeded.fingerprint() != fingerprint  # results graded on other moved digits are graded again
    reseeded.close()
