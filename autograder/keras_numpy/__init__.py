"""Pure-NumPy inference for saved Keras 3 models (``.keras`` files), without Keras or TensorFlow.

The grader runs student models on the test images inside a sandbox. Importing TensorFlow there
costs seconds per student; this module reads the ``.keras`` zip (``config.json`` and
``model.weights.h5``) with the standard library, NumPy and h5py only, and computes the same
predictions as ``keras.saving.load_model(path).predict(x)`` in float32.

It is deliberately strict. Only the layers, options and model structures listed below are
implemented, each checked option by option against Keras 3's own code (``keras/src``, 3.15); a
config key this module does not know, an option value it does not implement, a dtype policy other
than float32, a weight of the wrong shape or a malformed file raises :class:`Unsupported`, and the
caller falls back to real Keras. It never guesses.

Supported (``data_format`` channels_last only, float32 dtype policies only):

* models: ``Sequential``; ``Functional`` with one input and one output whose graph is a DAG of
  layers each called once; either nested inside the other as a layer.
* ``InputLayer``, ``Dense`` (any input rank, on the last axis), ``Conv2D`` (valid/same padding,
  strides, dilation_rate, groups=1), ``MaxPooling2D`` and ``AveragePooling2D`` (valid/same),
  ``GlobalAveragePooling2D`` and ``GlobalMaxPooling2D`` (keepdims), ``Flatten``, ``Reshape``,
  ``ZeroPadding2D``, ``Add``, ``Concatenate``, ``Rescaling``, ``Normalization`` (invert=False),
  ``BatchNormalization`` (renorm=False), ``Activation``, ``ReLU``, ``LeakyReLU``, ``ELU``,
  ``Softmax`` (last axis), ``PReLU``;
* identity at inference (checked in Keras' source): ``Dropout``, ``SpatialDropout2D``,
  ``GaussianNoise``, ``GaussianDropout``, ``AlphaDropout``, ``ActivityRegularization``,
  ``RandomRotation``, ``RandomTranslation``, ``RandomZoom``, ``RandomFlip``, ``RandomContrast``,
  ``RandomBrightness``;
* activations by name: linear, relu, relu6, leaky_relu, elu, selu, gelu (exact erf form, Keras'
  default), sigmoid, hard_sigmoid, silu/swish, softplus, softsign, tanh, exponential, mish,
  softmax, log_softmax; as a serialized dict, a weightless activation layer listed above.

Usage::

    model = load("mnist_cnn.keras")      # raises Unsupported if anything is outside the above
    probabilities = model.predict(x_test)  # float32, in batches sized to stay in the CPU's cache

Speed: Conv2D is one im2col copy (``sliding_window_view``) and one float32 matmul per batch; a
Conv2D followed by MaxPooling2D adds its bias and relu after the pooling (exact: both are
monotone). On one core, the course's reference CNN predicts the 10,000 MNIST test images in about
0.7 s (0.8 s for the whole process), against about 5 s to import TensorFlow and predict with Keras.
Batches are sized so that the largest buffer of one batch (a layer's output or its im2col copy)
holds about :data:`BATCH_FLOATS` values, a few megabytes, which stay in the CPU's cache: the
reference CNN runs in batches of 48 (0.72 s on one core; 1.13 s in batches of 500, 0.82 s in
batches of 128), a fully connected network in batches of 1,024 (``bench/grading_throughput.py``).
"""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import numpy as np

from .compat import canonical
from .config import F32, HDF5_MAGIC, MAX_CONFIG_BYTES, MAX_WEIGHTS_BYTES, Unsupported, _compat
from .models import _MODEL_MODULES, _build_layer, _optimize, _parse_entry, sample_floats
from .weights import _load_weights, load_legacy_weights

__all__ = ["Unsupported", "NumpyModel", "load", "check_version", "legacy_config"]

# About 4 MB of float32 per batch in the largest buffer: measured fastest for the course's networks. At least
# 32 rows, so that a large Dense layer's weights are read once per 32 images (a CNN without pooling: 3.9 s in
# batches of 32, 4.5 s in batches of 10).
BATCH_FLOATS = 2**20
MIN_BATCH, MAX_BATCH = 32, 1024


class NumpyModel:
    """A loaded model: ``predict(x)`` like ``keras.Model.predict`` (inference mode), in float32."""

    def __init__(self, model, input_shape, output_shape):
        self._model = model
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)

    @property
    def batch_size(self) -> int:
        """Rows per batch when ``predict`` is not told: the largest buffer of a batch about BATCH_FLOATS values
        (MIN_BATCH to MAX_BATCH rows)."""
        return max(MIN_BATCH, min(MAX_BATCH, BATCH_FLOATS // sample_floats(self._model)))

    def predict(self, x, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs on ``x`` (inference mode), computed ``batch_size`` rows at a time (default:
        :attr:`batch_size`)."""
        x = np.asarray(x)
        if batch_size is None:
            batch_size = self.batch_size
        if x.dtype.kind not in "fiub":
            raise ValueError(f"input dtype {x.dtype} is not numeric")
        if x.ndim != len(self.input_shape) + 1 or not _compat(x.shape[1:], self.input_shape):
            raise ValueError(f"input shape {x.shape[1:]} does not match the model's {self.input_shape}")
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
        n = x.shape[0]
        out = None
        for start in range(0, n, batch_size):
            xb = np.ascontiguousarray(x[start : start + batch_size], dtype=F32)
            yb = self._model.call(xb)
            if out is None:
                out = np.empty((n,) + yb.shape[1:], dtype=F32)
            out[start : start + len(yb)] = yb
        if out is None:
            if any(d is None for d in self.output_shape):
                raise ValueError("no input rows and the output shape is not fully known")
            out = np.empty((0,) + self.output_shape, dtype=F32)
        return out

    def parameters(self) -> tuple[np.ndarray, str]:
        """Every saved weight, layer by layer in the model's order (whatever the file's format or its layers'
        names), as one float32 vector, with the arrays' shapes ("784x128,128,128x10,10")."""
        arrays = []

        def walk(model):
            for layer in model.children():
                if layer.is_model:
                    walk(layer)
                else:
                    arrays.extend(getattr(layer, "loaded_weights", []))

        walk(self._model)
        vector = np.concatenate([a.reshape(-1) for a in arrays]) if arrays else np.zeros(0, dtype=F32)
        return vector.astype(F32), ",".join("x".join(str(d) for d in a.shape) or "1" for a in arrays)

    def __repr__(self):
        return f"NumpyModel(input_shape={self.input_shape}, output_shape={self.output_shape})"


def _read_member(zf, name, limit):
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise Unsupported(f"{name} is too large ({info.file_size} bytes)")
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Unsupported(f"{name} is too large")
    return data


_ZIP_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}


def load(path) -> NumpyModel:
    """Read a ``.keras`` file (any Keras 3, Keras 2 / tf_keras) or a legacy ``.h5`` model file; raise
    :class:`Unsupported` for anything not implemented exactly."""
    try:
        with open(path, "rb") as f:
            legacy = f.read(8) == HDF5_MAGIC
        return _load_h5(path) if legacy else _load(path)
    except Unsupported:
        raise
    except RecursionError:
        raise Unsupported("malformed model file: config nested too deeply") from None
    except (KeyError, TypeError, IndexError, ValueError, AttributeError, OSError, zipfile.BadZipFile,
            UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise Unsupported(f"malformed model file ({type(exc).__name__}: {exc})") from None


def check_version(version, where="the file"):
    """Keras 2 and 3 files are read; anything else (or a malformed version) is refused."""
    if version is not None and not (isinstance(version, str) and version.split(".")[0] in ("2", "3")):
        raise Unsupported(f"{where} was saved by Keras {version!r}; only Keras 2 and 3 files are supported")


def _model(config, source="config.json"):
    """The parsed model of a config, its input and output shapes."""
    if not isinstance(config, dict):
        raise Unsupported(f"malformed model file: {source} holds a {type(config).__name__}, not a model")
    config = canonical(config)
    if config.get("class_name") not in _MODEL_MODULES:
        raise Unsupported(f"model class {config.get('class_name')!r} is not supported (Sequential or Functional)")
    model = _parse_entry(config, "the model")
    if model.declared_input is None:
        raise Unsupported("the model has no declared input shape (build it with keras.Input)")
    return model, model.declared_input, _build_layer(model, model.declared_input)


def _load(path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Unsupported(f"not a Keras model archive ({type(exc).__name__}: {exc})") from None
    with zf:
        names = zf.namelist()
        if len(set(names)) != len(names):
            raise Unsupported("model archive has duplicate members")
        extra = set(names) - _ZIP_MEMBERS
        if extra:
            raise Unsupported(f"model archive has unexpected members {sorted(extra)[:5]}")
        for required in ("config.json", "model.weights.h5"):
            if required not in names:
                raise Unsupported(f"model archive has no {required}")
        try:
            config = json.loads(_read_member(zf, "config.json", MAX_CONFIG_BYTES))
            metadata = json.loads(_read_member(zf, "metadata.json", MAX_CONFIG_BYTES)) if "metadata.json" in names else {}
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Unsupported(f"malformed model file: invalid JSON ({exc})") from None
        weights = _read_member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES)
    if not isinstance(metadata, dict):
        raise Unsupported("malformed model file: metadata.json is not an object")
    check_version(metadata.get("keras_version"))
    model, input_shape, output_shape = _model(config)
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as exc:
        raise Unsupported(f"weights file cannot be read ({exc})") from None
    with h5:
        _load_weights(model, h5, "")
    _optimize(model)
    return NumpyModel(model, input_shape, output_shape)


def legacy_config(h5):
    """The model config (a dict) and Keras version of an open ``.h5`` model file."""
    raw = h5.attrs.get("model_config")
    if raw is None:
        raise Unsupported("the .h5 file holds weights only (model.save_weights), not a model")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if not isinstance(raw, str) or len(raw) > MAX_CONFIG_BYTES:
        raise Unsupported("malformed .h5 file: model_config is not a JSON text")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Unsupported(f"malformed .h5 file: model_config is not valid JSON ({exc})") from None
    version = h5.attrs.get("keras_version")
    return config, version.decode("utf-8", "replace") if isinstance(version, bytes) else version


def _load_h5(path):
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise Unsupported(f"the .h5 file cannot be read ({exc})") from None
    with h5:
        config, version = legacy_config(h5)
        check_version(version)
        model, input_shape, output_shape = _model(config, "model_config")
        weights = h5["model_weights"] if "model_weights" in h5 else None
        if not isinstance(weights, h5py.Group):
            raise Unsupported("the .h5 file has no model_weights group")
        load_legacy_weights(model, weights)
    _optimize(model)
    return NumpyModel(model, input_shape, output_shape)
