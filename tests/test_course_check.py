"""The student's check before handing in (course_check.py, shipped with every release), and `autograder check`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import course_config
from autograder import release
from autograder.course_check import check_saved_models, facts_of

A = course_config.MNIST_DENSE
COURSE = course_config.COURSE_DIR
PY313 = Path(os.environ.get("PYTHON313", "/root/.pyenv/versions/3.13.0/bin/python3.13"))


def lines_of(facts, **kwargs):
    said = []
    reports = check_saved_models(facts, out=said.append, **kwargs)
    return reports, "\n".join(said)


def validation(mnist):
    (x_train, y_train), _ = mnist
    return x_train[-6000:].astype("float32") / 255.0, y_train[-6000:]


def test_a_good_model_passes_and_the_engine_agrees_with_keras(models_dir, tmp_path, mnist):
    import keras

    shutil.copyfile(models_dir / "dense.keras", tmp_path / A.model_file)
    model = keras.saving.load_model(tmp_path / A.model_file)
    x_val, y_val = validation(mnist)
    reports, said = lines_of(facts_of(A, "full"), models={"model": model}, x_val=x_val, y_val=y_val, folder=tmp_path)
    report = reports["model"]
    assert report["engine"] == "numpy" and report["agree"] == 6000
    assert set(report["checks"]) == {"layer_types", "hidden_layer", "output_layer", "param_budget", "test_accuracy"}
    assert all(v["judged"] and v["points"] == v["of"] for cid, v in report["checks"].items() if cid != "test_accuracy")
    accuracy = float(np.mean(model.predict(x_val, verbose=0).argmax(1) == y_val))
    assert report["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert report["checks"]["test_accuracy"]["points"] == 0  # a small model: below every tier
    assert "the grader's engine agrees with your model on 6,000 of 6,000 validation images" in said
    assert "full credit at >= 0.9800, 50% of the points at >= 0.9700" in said  # the thresholds, from course_config
    assert "saved by Keras 3.15.1" in said


def test_failed_checks_and_missing_files_say_why(models_dir, tmp_path):
    shutil.copyfile(models_dir / "conv.keras", tmp_path / A.model_file)
    reports, said = lines_of(facts_of(A, "full"), folder=tmp_path)
    assert reports["model"]["checks"]["layer_types"]["message"].startswith("a fully connected network uses only")
    assert "✗ layer_types (0 of 1 pt): a fully connected network uses only" in said
    assert "check(s) lose points: layer_types" in said
    # without validation data the metric is not judged, and the verdict says so rather than "all pass"
    assert "? test_accuracy (6 pt, not judged here): no validation data was given" in said
    assert "Not judged here (1 check(s), 6 points): test_accuracy" in said
    (tmp_path / A.model_file).unlink()
    (tmp_path / "saved_model").mkdir()
    reports, said = lines_of(facts_of(A, "full"), folder=tmp_path)
    assert "✗ model file mnist_dense.keras not found" in said


def test_a_model_not_saved_after_training_is_caught(models_dir, tmp_path, mnist):
    """The file on disk is not the model in memory (the save cell ran before the last training)."""
    import keras

    shutil.copyfile(models_dir / "dense.keras", tmp_path / A.model_file)
    other = keras.saving.load_model(models_dir / "legacy.h5", compile=False)  # another network, same shape
    x_val, y_val = validation(mnist)
    reports, said = lines_of(facts_of(A, "full"), models={"model": other}, x_val=x_val, y_val=y_val, folder=tmp_path)
    assert reports["model"]["agree"] < 6000
    assert "the saved file is not the model in memory" in said


def test_without_validation_data_the_note_says_where_it_looked(tmp_path, monkeypatch):
    """A folder with only the 10k SUSY sample: the note names the places looked in, and does not tell the student to
    set COURSE_DATA_DIR, which is set."""
    from autograder.course_check import validation_data

    (tmp_path / "susy_real_10k.csv.gz").write_bytes(b"")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    said = []
    x, y = validation_data(facts_of(course_config.SUSY, "full"), out=said.append)
    assert x is None and y is None
    note = said[0]
    assert f"{tmp_path}/SUSY.csv.gz (not there)" in note and f"COURSE_DATA_DIR is {tmp_path}, which has no usable" in note
    assert "set COURSE_DATA_DIR" not in note and "Looked in:)" not in note
    reports, printed = lines_of(facts_of(course_config.SUSY, "full"), folder=tmp_path,
                                why_no_data=validation_data.why)
    assert "Every graded check passes" not in printed and "not judged" not in printed  # no files: nothing passes


def test_autograder_check_from_a_shell(models_dir, good_dense, tmp_path):
    shutil.copyfile(good_dense, tmp_path / A.model_file)
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", A.name, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ output_layer" in proc.stdout and "validation accuracy" in proc.stdout
    # a model (here the legacy .h5 twin) whose validation figure earns no points fails, as the notebook's check cell does
    (tmp_path / A.model_file).unlink()
    shutil.copyfile(models_dir / "legacy.h5", tmp_path / "mnist_dense.h5")
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", A.name, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "graded mnist_dense.h5, the legacy HDF5 (.h5) twin of mnist_dense.keras" in proc.stdout
    assert "✓ output_layer" in proc.stdout and "✗ test_accuracy (0 of 6 pt): validation accuracy" in proc.stdout
    shutil.copyfile(models_dir / "no_softmax.keras", tmp_path / A.model_file)
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", A.name, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "✗ output_layer (0 of 1 pt): output layer must be Dense(10, softmax)" in proc.stdout


def python313() -> Path:
    """A Python 3.13 virtual environment with NumPy 2 and h5py only, as a student's Colab has (cached in .venv)."""
    if not PY313.exists():
        reason = f"Python 3.13 not found at {PY313} (set PYTHON313)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    venv = Path(sys.prefix) / "py313"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        subprocess.run([str(PY313), "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "numpy>=2", "h5py"], check=True, timeout=600)
        (venv / ".ready").touch()
    return python


@pytest.mark.slow
def test_release_folder_check_runs_on_python_313_with_numpy_2(models_dir, tmp_path, mnist):
    """Colab's Python and NumPy, no Keras, no autograder: the helpers the released notebook carries read the
    model and predict exactly as the grader's engine does here."""
    import nbformat

    python = python313()
    folder = tmp_path / "release"
    folder.mkdir()
    nb = nbformat.read(COURSE / "release" / "mnist_augment" / "mnist_augment.ipynb", as_version=4)
    helper_cell = next(c.source for c in nb.cells if c.metadata["nbgrader"]["grade_id"] == release.HELPER_CELL_ID)
    shutil.copyfile(models_dir / "cnn_augment.keras", folder / "mnist_augment.keras")
    x_val, y_val = validation(mnist)
    np.save(tmp_path / "x_val.npy", x_val[:500])
    np.save(tmp_path / "y_val.npy", y_val[:500])
    facts = facts_of(course_config.MNIST_AUGMENT, "full")
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    code = helper_cell + "\n" + (
        "import json, sys, numpy as np, keras_numpy, course_check\n"
        f"assert np.__version__.startswith('2') and sys.version_info[:2] == (3, 13)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('autograder', 'keras', 'tensorflow')]\n"
        f"facts = json.load(open({str(tmp_path / 'facts.json')!r}))\n"
        f"x, y = np.load({str(tmp_path / 'x_val.npy')!r}), np.load({str(tmp_path / 'y_val.npy')!r})\n"
        "course_check.check_saved_models(facts, x_val=x[..., None], y_val=y)\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, keras_numpy.load('mnist_augment.keras').predict(x[..., None]))\n"
    )
    proc = subprocess.run([str(python), "-c", code], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("conv_layers", "pooling", "flatten_head", "augmentation_layers", "no_flip", "output_layer"):
        assert f"✓ {check}" in proc.stdout, proc.stdout
    assert "validation accuracy" in proc.stdout
    from autograder import keras_numpy

    here = keras_numpy.load(folder / "mnist_augment.keras").predict(x_val[:500, ..., None])
    assert np.array_equal(np.load(tmp_path / "out.npy"), here)
