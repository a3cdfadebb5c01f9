"""The pure-NumPy inference engine (autograder/keras_numpy.py) against real Keras.

Each model is tiny, with random weights (BatchNormalization statistics included), saved with
``model.save`` and reloaded with ``keras.saving.load_model``: the reloaded model is the truth, as it
is what the grader's Keras fallback would run. Predictions must agree to float32 round-off.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from autograder import keras_numpy
from autograder.keras_numpy import Unsupported
from autograder.sandbox import copy_engine

keras = pytest.importorskip("keras")
L = keras.layers

# Keras' TensorFlow backend trips NumPy 2's copy-keyword deprecation when converting tensors.
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Do not pass an `input_shape`:UserWarning"),
]

ATOL, RTOL = 1e-5, 1e-4
MAX_DIFFS: dict[str, float] = {}


def randomize(model, seed=0):
    """Random weights everywhere, positive variances, so every weight matters in the comparison."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if "int" in str(w.dtype):
            continue
        shape = tuple(w.shape)
        if "variance" in w.path:
            value = rng.uniform(0.5, 2.0, shape)
        elif "gamma" in w.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        w.assign(value.astype("float32"))
    return model


def inputs_for(shape, n=23, seed=1):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def roundtrip(model, tmp_path, name, x=None, batch_size=7, randomize_weights=True):
    """Save, reload with Keras and with keras_numpy, compare predictions; return the max abs diff."""
    if randomize_weights:
        randomize(model)
    path = tmp_path / (re.sub(r"\W+", "_", name) + ".keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    numpy_model = keras_numpy.load(path)
    shape = tuple(d if d is not None else 12 for d in numpy_model.input_shape)
    assert numpy_model.input_shape == tuple(reloaded.input_shape[1:])
    x = inputs_for(shape) if x is None else x
    expected = keras.ops.convert_to_numpy(reloaded(x, training=False))
    got = numpy_model.predict(x, batch_size=batch_size)
    assert got.dtype == np.float32
    assert numpy_model._model.call(x[:2]).dtype == np.float32  # float32 throughout, not cast at the end
    assert got.shape == expected.shape
    assert np.std(expected) > 1e-3, f"{name}: a degenerate model (constant output) tests nothing"
    diff = float(np.max(np.abs(got - expected)))
    MAX_DIFFS[name] = diff
    assert np.allclose(got, expected, atol=ATOL, rtol=RTOL), f"{name}: max abs diff {diff}"
    if expected.ndim == 2 and expected.shape[1] > 1:
        assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    return diff


# ---------------------------------------------------------------------------------------------
# the course's reference architectures


def cnn_layers():
    return [
        L.Rescaling(1 / 0.3081, offset=-0.1307 / 0.3081),
        L.Conv2D(24, 5, activation="relu"),
        L.MaxPooling2D(2),
        L.Conv2D(48, 3, activation="relu"),
        L.MaxPooling2D(2),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dropout(0.25),
        L.Dense(10, activation="softmax"),
    ]


def test_reference_dense(tmp_path):
    model = keras.Sequential([
        keras.Input((28, 28)), L.Flatten(),
        L.Dense(512, activation="relu"), L.Dropout(0.2),
        L.Dense(512, activation="relu"), L.Dropout(0.2),
        L.Dense(10, activation="softmax"),
    ])
    roundtrip(model, tmp_path, "reference dense")


def test_reference_cnn_on_mnist_images(tmp_path, mnist):
    _, (x_test, _) = mnist
    x = (x_test[:300].astype("float32") / 255.0)[..., None]
    model = keras.Sequential([keras.Input((28, 28, 1)), *cnn_layers()])
    roundtrip(model, tmp_path, "reference cnn", x=x, batch_size=128)


def test_default_batches_fit_the_cache_and_give_the_same_predictions(tmp_path, mnist):
    """predict() without a batch size sizes batches by the model's largest buffer per image (the CNN's
    im2col copy: small batches; a dense network: large ones), with the outputs of any other batch size."""
    _, (x_test, _) = mnist
    x = (x_test[:500].astype("float32") / 255.0)[..., None]
    cnn = randomize(keras.Sequential([keras.Input((28, 28, 1)), *cnn_layers()]))
    cnn.save(tmp_path / "cnn.keras")
    model = keras_numpy.load(tmp_path / "cnn.keras")
    # the second Conv2D's im2col copy: 10 x 10 positions x 3 x 3 x 24 values per image
    assert model.batch_size == keras_numpy.BATCH_FLOATS // (10 * 10 * 3 * 3 * 24) == 48
    assert np.array_equal(model.predict(x), model.predict(x, batch_size=500))
    dense = randomize(keras.Sequential([keras.Input((28, 28)), L.Flatten(), L.Dense(512, activation="relu"),
                                        L.Dense(10, activation="softmax")]))
    dense.save(tmp_path / "dense.keras")
    assert keras_numpy.load(tmp_path / "dense.keras").batch_size == keras_numpy.MAX_BATCH
    # No pooling: 22 x 22 positions x 216 values per image would allow batches of 10; large Dense weights want more.
    no_pooling = keras.Sequential([keras.Input((28, 28, 1)), *[layer for layer in cnn_layers()
                                                              if not isinstance(layer, L.MaxPooling2D)]])
    no_pooling.save(tmp_path / "no_pooling.keras")
    assert keras_numpy.load(tmp_path / "no_pooling.keras").batch_size == keras_numpy.MIN_BATCH


def test_reference_augment_trained_one_epoch(tmp_path, mnist):
    (x_train, y_train), (x_test, _) = mnist
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.RandomRotation(0.03), L.RandomTranslation(0.1, 0.1), L.RandomZoom(0.1),
        *cnn_layers(),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit((x_train[:256] / 255.0)[..., None], y_train[:256], epochs=1, batch_size=128, verbose=0)
    x = (x_test[:200].astype("float32") / 255.0)[..., None]
    roundtrip(model, tmp_path, "reference augment (trained)", x=x, randomize_weights=False)


def test_reference_susy_dnn(tmp_path):
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 5, 18)
    data = (rng.normal(size=(500, 18)) * scale + rng.normal(size=18)).astype("float32")
    norm = L.Normalization()
    norm.adapt(data)
    model = keras.Sequential([
        keras.Input((18,)), norm,
        L.Dense(128, activation="relu"), L.Dense(128, activation="relu"), L.Dense(128, activation="relu"),
        L.Dense(1, activation="sigmoid"),
    ])
    randomize(model.layers[1])
    randomize(model.layers[2])
    x = (rng.normal(size=(40, 18)) * scale).astype("float32")
    roundtrip(model, tmp_path, "reference susy dnn", x=x, randomize_weights=False)


# ---------------------------------------------------------------------------------------------
# every supported layer and option


ACTIVATIONS = [
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "sigmoid", "hard_sigmoid", "silu",
    "swish", "softplus", "softsign", "tanh", "exponential", "mish", "softmax", "log_softmax", None,
]


def test_dense_activations_by_name_and_concatenate(tmp_path):
    inputs = keras.Input((16,))
    branches = [L.Dense(6, activation=a)(inputs) for a in ACTIVATIONS]
    branches.append(L.Dense(6, activation=L.LeakyReLU(0.1))(inputs))  # a serialized layer
    outputs = L.Concatenate()(branches)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(2).normal(0, 2, (31, 16)).astype("float32")
    roundtrip(model, tmp_path, "dense activations", x=x)


def test_activation_layers(tmp_path):
    inputs = keras.Input((12,))
    h = L.Dense(12)(inputs)
    outs = [L.Activation(a)(h) for a in ("relu", "gelu", "tanh", "softmax", "hard_sigmoid")]
    outs += [
        L.ReLU()(h), L.ReLU(max_value=6.0)(h), L.ReLU(max_value=0.5)(h), L.ReLU(negative_slope=0.1)(h),
        L.ReLU(threshold=0.2)(h), L.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.1)(h),
        L.ReLU(negative_slope=0.3, threshold=0.1)(h),
        L.LeakyReLU()(h), L.LeakyReLU(negative_slope=0.05)(h),
        L.ELU()(h), L.ELU(alpha=0.5)(h),  # Keras does not save ELU's alpha: reloaded, it is 1.0
        L.Softmax()(h), L.PReLU()(h),
    ]
    model = keras.Model(inputs, L.Concatenate()(outs))
    x = np.random.default_rng(4).normal(0, 2, (17, 12)).astype("float32")
    roundtrip(model, tmp_path, "activation layers", x=x)


def test_conv_padding_strides_dilation(tmp_path):
    model = keras.Sequential([
        keras.Input((9, 11, 3)),
        L.Conv2D(5, 3, strides=2, padding="same", activation="tanh"),
        L.ZeroPadding2D(((1, 2), (0, 1))),
        L.Conv2D(4, (3, 2), dilation_rate=(2, 1), padding="same", use_bias=False),
        L.Conv2D(6, (2, 3), strides=(1, 2), activation="elu"),
        L.Conv2D(3, 1, activation="relu"),
        L.PReLU(shared_axes=[1, 2]),
        L.ZeroPadding2D(1),
        L.Conv2D(4, 3, dilation_rate=2, activation="sigmoid"),
        L.Flatten(),
        L.Dense(5),
    ])
    roundtrip(model, tmp_path, "conv options")


def test_pooling_options(tmp_path):
    inputs = keras.Input((9, 9, 4))
    h = L.Conv2D(4, 2, padding="same", activation="relu")(inputs)
    outs = [
        L.MaxPooling2D(2)(h),
        L.MaxPooling2D(3, strides=2)(h),
        L.MaxPooling2D(2, padding="same")(h),
        L.MaxPooling2D((3, 2), strides=(2, 1), padding="same")(h),
        L.AveragePooling2D(2)(h),
        L.AveragePooling2D(3, strides=1)(h),
        L.AveragePooling2D(2, padding="same")(h),
        L.AveragePooling2D((3, 3), strides=(2, 2), padding="same")(h),
    ]
    flat = [L.Flatten()(o) for o in outs]
    flat += [L.GlobalAveragePooling2D()(h), L.GlobalMaxPooling2D()(h)]
    flat += [L.Flatten()(L.GlobalAveragePooling2D(keepdims=True)(h)), L.Flatten()(L.GlobalMaxPooling2D(keepdims=True)(h))]
    model = keras.Model(inputs, L.Concatenate()(flat))
    roundtrip(model, tmp_path, "pooling options")


def test_conv_then_maxpool_fast_path_matches_with_linear_and_same(tmp_path):
    model = keras.Sequential([
        keras.Input((10, 10, 2)),
        L.Conv2D(3, 3, padding="same"), L.MaxPooling2D(3, strides=2, padding="same"),
        L.Conv2D(4, 2, activation="relu", use_bias=False), L.MaxPooling2D(2),
        L.Flatten(),
    ])
    x = np.random.default_rng(5).normal(0, 1, (13, 10, 10, 2)).astype("float32")
    roundtrip(model, tmp_path, "conv -> maxpool fast path", x=x)


def test_batch_normalization_variants(tmp_path):
    inputs = keras.Input((6, 6, 3))
    h = L.BatchNormalization()(inputs)
    h = L.Conv2D(4, 3, activation="relu")(h)
    h = L.BatchNormalization(center=False, epsilon=0.01)(h)
    h = L.BatchNormalization(scale=False, axis=3)(h)
    h = L.BatchNormalization(center=False, scale=False)(h)
    h = L.Reshape((4 * 4, 4))(h)
    h = L.BatchNormalization(axis=1)(h)
    h = L.Dense(3, activation="relu")(h)  # Dense on a 3-D input: the last axis
    out = L.Flatten()(h)
    model = keras.Model(inputs, out)
    roundtrip(model, tmp_path, "batch normalization")


def test_identity_at_inference_layers(tmp_path):
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        L.RandomFlip(), L.RandomRotation(0.2, fill_mode="constant"), L.RandomTranslation(0.2, (-0.1, 0.3)),
        L.RandomZoom(0.2, 0.3), L.RandomContrast(0.5), L.RandomBrightness(0.2, value_range=(0, 1)),
        L.GaussianNoise(0.5), L.GaussianDropout(0.3), L.SpatialDropout2D(0.5),
        L.Conv2D(4, 3, activation="selu"), L.AlphaDropout(0.2), L.ActivityRegularization(0.01, 0.01),
        L.Dropout(0.5, noise_shape=(None, 1, 1, 4)), L.Flatten(), L.Dense(3, activation="softmax"),
    ])
    roundtrip(model, tmp_path, "identity layers")


def test_rescaling_and_normalization_options(tmp_path):
    rng = np.random.default_rng(6)
    adapted = L.Normalization(axis=-1)
    adapted.adapt(rng.normal(2, 3, (50, 5, 5, 3)).astype("float32"))
    scalar = L.Normalization(axis=None)
    scalar.adapt(rng.normal(-1, 0.5, (50, 5, 5, 3)).astype("float32"))
    model = keras.Sequential([
        keras.Input((5, 5, 3)),
        L.Rescaling([0.5, 2.0, -1.0], offset=[0.1, 0.0, -0.2]),
        L.Rescaling(3.0),
        adapted,
        scalar,
        L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 4.0, 0.0]),  # zero variance: epsilon
        L.Normalization(axis=(1, 2), mean=0.5, variance=2.0),
        L.Flatten(),
        L.Dense(4),
    ])
    roundtrip(model, tmp_path, "rescaling/normalization", randomize_weights=False)


def test_functional_dag_with_nested_models_and_add(tmp_path):
    augment = keras.Sequential([L.RandomFlip("horizontal"), L.RandomZoom(0.1)], name="augment")
    block_in = keras.Input((6, 6, 4))
    block = keras.Model(block_in, L.Add()([block_in, L.Conv2D(4, 3, padding="same")(block_in)]), name="residual")
    inputs = keras.Input((8, 8, 2))
    x = augment(inputs)
    a = L.Conv2D(4, 3, activation="relu")(x)
    b = block(a)
    c = L.Conv2D(4, 3, padding="same", activation="relu")(a)
    merged = L.Concatenate(axis=1)([b, c])
    s = L.Add()([merged, merged, L.Conv2D(4, 1)(merged)])
    head = keras.Sequential([L.GlobalAveragePooling2D(), L.Dense(8, activation="relu"), L.Dense(3)], name="head")
    model = keras.Model(inputs, head(s))
    roundtrip(model, tmp_path, "functional dag + nested")


def test_sequential_nested_in_sequential_and_variable_image_size(tmp_path):
    inner = keras.Sequential([L.Conv2D(3, 3, padding="same", activation="relu"), L.Conv2D(3, 3)])
    model = keras.Sequential([keras.Input((None, None, 2)), inner, L.GlobalMaxPooling2D(), L.Dense(2)])
    roundtrip(model, tmp_path, "nested sequential, None dims")


def test_sequential_without_input_built_by_fit(tmp_path):
    """No keras.Input: fit() builds the model and records its first batch size in the InputLayer."""
    rng = np.random.default_rng(7)
    model = keras.Sequential([L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(rng.random((64, 12, 12, 1), dtype=np.float32), rng.integers(0, 10, 64), epochs=1, batch_size=32, verbose=0)
    assert model.layers[0].input.shape[0] == 32
    roundtrip(model, tmp_path, "sequential built by fit")
    model = keras.Sequential([L.Flatten(input_shape=(6, 6)), L.Dense(3)])  # the deprecated input_shape argument
    roundtrip(model, tmp_path, "sequential input_shape kwarg")


def test_weight_groups_follow_keras_naming(tmp_path):
    """Several layers of one class: keras names groups dense, dense_1, ... in model.layers order,
    which for a Functional model is its depth order, not the order the layers were created in."""
    inputs = keras.Input((4,))
    late = L.Dense(3, name="made_first")
    early = L.Dense(3, name="made_second")
    out = late(L.Dense(3)(early(inputs)))
    model = keras.Model(inputs, out)
    roundtrip(model, tmp_path, "keras weight naming")


def test_standalone_no_keras_import_and_input_checks(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(2, activation="softmax")])
    randomize(model)
    path = tmp_path / "m.keras"
    model.save(path)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    copy_engine(sandbox / "keras_numpy")
    code = (
        f"import sys; sys.path.insert(0, {str(sandbox)!r}); import numpy as np, keras_numpy; "
        f"m = keras_numpy.load({str(path)!r}); p = m.predict(np.ones((3, 4), np.float32)); "
        "assert p.shape == (3, 2) and p.dtype == np.float32; "
        "bad = [n for n in sys.modules if n.split('.')[0] in ('keras', 'tensorflow', 'autograder')]; "
        "assert not bad, bad; print('ok')"
    )
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    numpy_model = keras_numpy.load(path)
    with pytest.raises(ValueError, match="does not match"):
        numpy_model.predict(np.ones((3, 5), np.float32))
    assert numpy_model.predict(np.ones((0, 4), np.float32)).shape == (0, 2)


# ---------------------------------------------------------------------------------------------
# what must be refused, with a readable reason


def unsupported(model, tmp_path, match):
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(Unsupported, match=match):
        keras_numpy.load(path)


def test_lambda_layer_is_unsupported(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Lambda(lambda t: t * 2), L.Dense(2)])
    unsupported(model, tmp_path, r"'lambda(_\d+)?' \(Lambda\).*not supported.*Python code")


def test_lstm_is_unsupported(tmp_path):
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(4), L.Dense(2)])
    unsupported(model, tmp_path, r"\(LSTM\): layer type LSTM is not supported")


@pytest.mark.parametrize("policy", ["float16", "bfloat16"])
def test_half_precision_variables_are_unsupported(tmp_path, policy):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, dtype=policy), L.Dense(2)])
    unsupported(model, tmp_path, rf"\(Dense\): dtype policy '{policy}'.*only float32, mixed_float16, mixed_bfloat16")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_models_are_computed_in_their_precision(tmp_path, mnist, policy):
    """A model trained under a mixed policy: the engine rounds to float16 / bfloat16 where Keras computes
    in it, so it scores what Keras scores on the 10,000 test digits (within 5 of them), from either format.
    float16's 10 bits leave Keras' class decisions unchanged; bfloat16's 7 bits make near-ties (logits one
    rounding step apart) fall either way, about 4 in 1,000, in both directions."""
    (x_train, y_train), (x_test, y_test) = mnist
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential([
            keras.Input((28, 28, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(), L.BatchNormalization(),
            L.Flatten(), L.Dense(16, activation="relu"), L.Dense(10), L.Activation("softmax", dtype="float32"),
        ])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit((x_train[:4000] / 255.0)[..., None], y_train[:4000], epochs=1, batch_size=64, verbose=0)
        for suffix in (".keras", ".h5"):
            model.save(tmp_path / f"m{suffix}")
        x = (x_test.astype("float32") / 255.0)[..., None]
        expected = np.asarray(model.predict(x, batch_size=500, verbose=0), dtype=np.float32)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for suffix in (".keras", ".h5"):
        got = keras_numpy.load(tmp_path / f"m{suffix}").predict(x)
        right, keras_right = int(np.sum(got.argmax(1) == y_test)), int(np.sum(expected.argmax(1) == y_test))
        assert abs(right - keras_right) <= 5, f"{policy} {suffix}: {right} digits right, Keras {keras_right}"
        flips = int(np.sum(got.argmax(1) != expected.argmax(1)))
        assert flips <= (5 if policy == "mixed_float16" else 100), f"{policy} {suffix}: {flips} decisions differ"
        assert float(np.max(np.abs(got - expected))) < 0.03


def test_channels_first_is_unsupported(tmp_path):
    model = keras.Sequential([keras.Input((1, 8, 8)), L.Conv2D(2, 3, data_format="channels_first"), L.Flatten()])
    unsupported(model, tmp_path, r"\(Conv2D\): data_format='channels_first' is not supported")


def test_shared_layer_is_unsupported(tmp_path):
    inputs = keras.Input((4,))
    shared = L.Dense(4, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    unsupported(model, tmp_path, r"'shared' \(Dense\): is called 2 times; shared")


def test_other_unsupported_layers_and_options(tmp_path):
    unsupported(keras.Sequential([keras.Input((8, 8, 1)), L.RandomCrop(4, 4)]), tmp_path, "RandomCrop is not supported")
    unsupported(keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(2, 3, groups=2)]), tmp_path, "groups=2 is not supported")
    unsupported(keras.Sequential([keras.Input((4,)), L.Normalization(mean=1.0, variance=1.0, invert=True)]),
                tmp_path, "invert=True is not supported")
    inputs = keras.Input((4,))
    two_outputs = keras.Model(inputs, [L.Dense(1)(inputs), L.Dense(2)(inputs)])
    unsupported(two_outputs, tmp_path, "one input and one output only")


# tampered files


def saved_members(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, activation="relu", name="hidden"), L.Dense(2)])
    path = tmp_path / "ok.keras"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_members(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_tampered_unknown_config_key(tmp_path):
    members = saved_members(tmp_path)
    config = json.loads(members["config.json"])
    dense = config["config"]["layers"][1]["config"]
    dense["trainable"] = False  # a known key: still fine
    members["config.json"] = json.dumps(config)
    assert keras_numpy.load(write_members(tmp_path / "a.keras", members)).predict(np.ones((1, 4))).shape == (1, 2)
    dense["kernel_scale"] = 3.0
    members["config.json"] = json.dumps(config)
    with pytest.raises(Unsupported, match=r"\(Dense\): config option\(s\) 'kernel_scale' not supported"):
        keras_numpy.load(write_members(tmp_path / "b.keras", members))


def test_tampered_weight_shape(tmp_path):
    import h5py

    members = saved_members(tmp_path)
    buf = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buf, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((5, 3), np.float32)
    members["model.weights.h5"] = buf.getvalue()
    with pytest.raises(Unsupported, match=r"'hidden' \(Dense\): weight 0 has shape \(5, 3\), expected \(4, 3\)"):
        keras_numpy.load(write_members(tmp_path / "c.keras", members))


def test_tampered_config_list_and_missing_weights(tmp_path):
    members = saved_members(tmp_path)
    bad = dict(members, **{"config.json": json.dumps([1, 2])})
    with pytest.raises(Unsupported, match="config.json holds a list, not a model"):
        keras_numpy.load(write_members(tmp_path / "d.keras", bad))
    missing = {k: v for k, v in members.items() if k != "model.weights.h5"}
    with pytest.raises(Unsupported, match="no model.weights.h5"):
        keras_numpy.load(write_members(tmp_path / "e.keras", missing))
    (tmp_path / "f.keras").write_bytes(b"not a zip")
    with pytest.raises(Unsupported, match="not a Keras model archive"):
        keras_numpy.load(tmp_path / "f.keras")
    garbled = dict(members, **{"model.weights.h5": b"\x89HDF garbage"})
    with pytest.raises(Unsupported, match="weights file cannot be read"):
        keras_numpy.load(write_members(tmp_path / "g.keras", garbled))
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["units"] = "3"
    with pytest.raises(Unsupported, match=r"units='3' is not supported"):
        keras_numpy.load(write_members(tmp_path / "h.keras", dict(members, **{"config.json": json.dumps(config)})))
    del config["config"]["layers"][1]["config"]
    with pytest.raises(Unsupported, match="malformed"):
        keras_numpy.load(write_members(tmp_path / "i.keras", dict(members, **{"config.json": json.dumps(config)})))


def test_report_max_diffs():
    """Printed with ``pytest -s``: the largest absolute difference from Keras, per model."""
    for name, diff in sorted(MAX_DIFFS.items()):
        print(f"{name:32s} {diff:.3g}")
