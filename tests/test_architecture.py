"""Reading a model's architecture from its .keras file without deserializing it."""

from __future__ import annotations

import zipfile

import pytest

from autograder.keras_numpy.architecture import ModelFileError, inspect_model


def test_reads_layers_shapes_and_parameter_count(models_dir):
    import keras

    info = inspect_model(models_dir / "dense.keras")
    model = keras.saving.load_model(models_dir / "dense.keras")
    assert info.n_params == model.count_params()
    assert info.input_shape == (28, 28)
    assert info.layer_types() == ["InputLayer", "Flatten", "Dense", "Dense"]
    assert info.output_layer.describe() == "Dense(10, softmax)"
    assert info.summary() == "Flatten -> Dense(64, relu) -> Dense(10, softmax)"


def test_flat_input_and_conv_models(models_dir):
    assert inspect_model(models_dir / "flat_input.keras").input_shape == (784,)
    conv = inspect_model(models_dir / "conv.keras")
    assert conv.input_shape == (28, 28, 1)
    assert "Conv2D" in conv.layer_types()
    assert conv.n_params == (3 * 3 * 1 * 4 + 4) + (26 * 26 * 4 * 10 + 10)


def test_functional_and_nested_models(tmp_path):
    import keras

    inner = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(8, activation="relu")])
    inputs = keras.Input((28, 28))
    outputs = keras.layers.Dense(10, activation="softmax")(inner(inputs))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "f.keras")
    info = inspect_model(tmp_path / "f.keras")
    assert info.class_name == "Functional"
    assert info.input_shape == (28, 28)
    assert info.output_layer.describe() == "Dense(10, softmax)"
    assert info.n_params == model.count_params()


def test_lambda_layers_are_rejected(models_dir):
    with pytest.raises(ModelFileError, match="Lambda layer, which carries Python code"):
        inspect_model(models_dir / "lambda.keras")


def test_legacy_h5_reads_like_its_keras_twin(models_dir, tmp_path):
    import keras

    info = inspect_model(models_dir / "legacy.h5")
    model = keras.saving.load_model(models_dir / "legacy.h5", compile=False)
    assert info.format == "h5" and info.keras_version == keras.__version__
    assert info.n_params == model.count_params()
    assert info.input_shape == (28, 28)
    assert info.summary() == "Flatten -> Dense(64, relu) -> Dense(10, softmax)"
    renamed = tmp_path / "mnist_dense.keras"  # content decides, not the name
    renamed.write_bytes((models_dir / "legacy.h5").read_bytes())
    assert inspect_model(renamed).summary() == info.summary()


def test_weights_only_h5_is_refused_with_the_fix(models_dir, tmp_path):
    import keras

    model = keras.saving.load_model(models_dir / "dense.keras")
    model.save_weights(tmp_path / "mnist_dense.weights.h5")
    path = tmp_path / "mnist_dense.h5"
    path.write_bytes((tmp_path / "mnist_dense.weights.h5").read_bytes())
    with pytest.raises(ModelFileError, match=r"weights only.*model.save\(\"mnist_dense.keras\"\)"):
        inspect_model(path)


def test_garbage_missing_and_damaged_files(tmp_path, models_dir):
    with pytest.raises(ModelFileError, match="not found"):
        inspect_model(tmp_path / "absent.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("hello")
    with pytest.raises(ModelFileError, match="not a Keras model archive"):
        inspect_model(junk)
    noconf = tmp_path / "noconf.keras"
    with zipfile.ZipFile(noconf, "w") as z:
        z.writestr("metadata.json", "{}")
    with pytest.raises(ModelFileError, match="no config.json"):
        inspect_model(noconf)
    noweights = tmp_path / "noweights.keras"
    with zipfile.ZipFile(models_dir / "dense.keras") as src, zipfile.ZipFile(noweights, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    with pytest.raises(ModelFileError, match="has no weights"):
        inspect_model(noweights)


def test_size_limit(models_dir):
    with pytest.raises(ModelFileError, match="the limit is"):
        inspect_model(models_dir / "dense.keras", max_mb=0.01)


def test_lambda_layers_in_h5_files_are_refused_too(tmp_path):
    """An .h5 file's model_config is read like config.json: a Lambda layer (Python code) is refused."""
    import keras

    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "mnist_dense.h5")
    with pytest.raises(ModelFileError, match="Lambda layer, which carries Python code"):
        inspect_model(tmp_path / "mnist_dense.h5")
