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
    assert set(report["checks"]) == {"layer_types", "hidden_layer", "output_layer", "param_budget"}
    assert not any(report["checks"].values())
    accuracy = float(np.mean(model.predict(x_val, verbose=0).argmax(1) == y_val))
    assert report["metric"] == pytest.approx(accuracy, abs=1e-9)
    assert "the grader's engine agrees with your model on 6,000 of 6,000 validation images" in said
    assert "full credit at >= 0.9800, 50% of the points at >= 0.9700" in said  # the thresholds, from course_config
    assert "saved by Keras 3.15.1" in said


def test_failed_checks_and_missing_files_say_why(models_dir, tmp_path):
    shutil.copyfile(models_dir / "conv.keras", tmp_path / A.model_file)
    reports, said = lines_of(facts_of(A, "full"), folder=tmp_path)
    assert reports["model"]["checks"]["layer_types"].startswith("a fully connected network uses only")
    assert "✗ layer_types (1 pt): a fully connected network uses only" in said
    assert "1 model file(s) with a problem" in said
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
    assert "✓ output_layer" in proc.stdout and "0% of its points if the test figure is the same" in proc.stdout
    shutil.copyfile(models_dir / "no_softmax.keras", tmp_path / A.model_file)
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", A.name, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "✗ output_layer (1 pt): output layer must be Dense(10, softmax)" in proc.stdout


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
