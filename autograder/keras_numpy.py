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
    probabilities = model.predict(x_test)  # float32, processed in batches of 128

Speed: Conv2D is one im2col copy (``sliding_window_view``) and one float32 matmul per batch; a
Conv2D followed by MaxPooling2D adds its bias and relu after the pooling (exact: both are
monotone). On one core, the course's reference CNN predicts the 10,000 MNIST test images in about
0.5 s (0.7 s for the whole process), against about 5 s to import TensorFlow and predict with Keras.
Batches of 128 keep the im2col buffers in cache; larger batches are slower, not faster.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["Unsupported", "NumpyModel", "load"]

F32 = np.float32
KERAS_EPSILON = 1e-7  # keras.config.epsilon() default, used by Normalization

MAX_CONFIG_BYTES = 16 * 2**20
MAX_WEIGHTS_BYTES = 1 * 2**30
# Like Keras' own guard against HDF5 "shape bombs": a dataset whose declared size is far above
# what is stored on disk is refused.
_BOMB_FLOOR_BYTES = 64 * 2**20
_BOMB_MAX_EXPANSION = 1000


class Unsupported(Exception):
    """The file uses something this engine does not implement exactly (or is malformed).

    The message says which layer or option; the caller should fall back to real Keras.
    """


# --------------------------------------------------------------------------------------------
# small validation helpers


def _where(layer_name, class_name):
    return f"layer {layer_name!r} ({class_name})"


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_tuple(value, n, what, where, minimum=1):
    """An int or a list of ``n`` ints (each >= minimum), as Keras' standardize_tuple accepts."""
    if _is_int(value):
        value = [value] * n
    if not isinstance(value, (list, tuple)) or len(value) != n or not all(_is_int(v) for v in value):
        raise Unsupported(f"{where}: {what}={value!r} is not {n} integers")
    if any(v < minimum for v in value):
        raise Unsupported(f"{where}: {what}={value!r} is not supported (values must be >= {minimum})")
    return tuple(value)


def _snake_case(name):
    """keras.src.utils.naming.to_snake_case: how Keras names weight groups in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _check_dtype_policy(value, where):
    """Only a plain float32 policy is supported (no mixed precision, no quantization)."""
    if value == "float32":
        return
    if isinstance(value, dict):
        keys = set(value) - {"module", "class_name", "config", "registered_name", "shared_object_id"}
        if (
            not keys
            and value.get("module") == "keras"
            and value.get("class_name") in ("DTypePolicy", "FloatDTypePolicy")
            and value.get("registered_name") is None
            and value.get("config") == {"name": "float32"}
        ):
            return
        cfg = value.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else cfg
        raise Unsupported(f"{where}: dtype policy {name!r} ({value.get('class_name')}) is not supported; only float32")
    raise Unsupported(f"{where}: dtype {value!r} is not supported; only float32")


_OBJECT_MODULES = {
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
}
_OBJECT_KEYS = {
    "initializer": {"seed", "mean", "stddev", "minval", "maxval", "scale", "mode", "distribution", "value",
                    "gain", "input_axes", "output_axes"},
    "regularizer": {"l1", "l2", "factor", "mode"},
    "constraint": {"max_value", "min_value", "rate", "axis"},
}
_OBJECT_CLASSES = {
    "initializer": {
        "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "IdentityInitializer",
        "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "OrthogonalInitializer", "RandomNormal",
        "RandomUniform", "TruncatedNormal", "VarianceScaling", "Zeros",
    },
    "regularizer": {"L1", "L2", "L1L2", "OrthogonalRegularizer"},
    "constraint": {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"},
}
_INITIALIZER_NAMES = {
    "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "identity", "lecun_normal",
    "lecun_uniform", "ones", "orthogonal", "random_normal", "random_uniform", "truncated_normal",
    "variance_scaling", "zeros",
}


def _check_keras_object(value, kind, where, key, allow_none):
    """Initializers, regularizers and constraints do not change inference; accept only built-ins
    whose config holds plain values (Keras validates them further when it loads the model)."""
    if value is None and allow_none:
        return
    if isinstance(value, str) and kind == "initializer" and value.lower() in _INITIALIZER_NAMES:
        return
    if (
        isinstance(value, dict)
        and not set(value) - {"module", "class_name", "config", "registered_name"}
        and value.get("module") == _OBJECT_MODULES[kind]
        and value.get("class_name") in _OBJECT_CLASSES[kind]
        and value.get("registered_name") is None
        and isinstance(value.get("config", {}), dict)
    ):
        cfg = value.get("config", {})
        plain = not set(cfg) - _OBJECT_KEYS[kind] and all(
            v is None or isinstance(v, (bool, str)) or _is_number(v)
            or (isinstance(v, list) and all(_is_int(e) for e in v))
            for v in cfg.values()
        )
        if plain and (cfg.get("seed") is None or _is_int(cfg.get("seed"))):
            return
    raise Unsupported(f"{where}: {key}={value!r} is not a built-in Keras {kind}")


class _Config:
    """A layer config being read: every key must be consumed, else Unsupported."""

    def __init__(self, cfg, class_name):
        if not isinstance(cfg, dict):
            raise Unsupported(f"malformed model file: a {class_name} layer config is not an object")
        self.cfg = cfg
        self.class_name = class_name
        name = cfg.get("name")
        if not isinstance(name, str) or not name:
            raise Unsupported(f"malformed model file: a {class_name} layer has no name")
        self.name = name
        self.where = _where(name, class_name)
        self.seen = set()

    def get(self, key, default=None):
        self.seen.add(key)
        return self.cfg.get(key, default)

    def has(self, key):
        return key in self.cfg

    def must(self, key, value, default=None):
        """The key must be absent or equal to ``value`` (the only supported setting)."""
        got = self.get(key, default)
        if got != value or type(got) is not type(value):
            raise Unsupported(f"{self.where}: {key}={got!r} is not supported (only {value!r})")

    def base(self, trainable=True, dtype=True):
        self.seen.add("name")
        if trainable or self.has("trainable"):
            t = self.get("trainable", True)
            if not isinstance(t, bool):
                raise Unsupported(f"{self.where}: trainable={t!r} is not a boolean")
        if dtype or self.has("dtype"):
            _check_dtype_policy(self.get("dtype"), self.where)
        _check_keras_object(self.get("activity_regularizer"), "regularizer", self.where, "activity_regularizer", True)

    def ignore_objects(self, **keys):
        for key, kind in keys.items():
            allow_none = kind != "initializer"
            if self.has(key):
                _check_keras_object(self.get(key), kind, self.where, key, allow_none)

    def boolean(self, key, default):
        v = self.get(key, default)
        if not isinstance(v, bool):
            raise Unsupported(f"{self.where}: {key}={v!r} is not a boolean")
        return v

    def number(self, key, default, minimum=None, maximum=None):
        v = self.get(key, default)
        if not _is_number(v) or (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
            raise Unsupported(f"{self.where}: {key}={v!r} is not supported")
        return v

    def axis(self):
        """An integer ``axis`` (default -1)."""
        v = self.get("axis", -1)
        if not _is_int(v):
            raise Unsupported(f"{self.where}: axis={v!r} is not supported")
        return v

    def seed(self):
        v = self.get("seed")
        if v is not None and not _is_int(v):
            raise Unsupported(f"{self.where}: seed={v!r} is not supported")

    def channels_last(self):
        v = self.get("data_format", "channels_last")
        if v != "channels_last":
            raise Unsupported(f"{self.where}: data_format={v!r} is not supported (channels_last only)")

    def finish(self):
        unknown = sorted(set(self.cfg) - self.seen)
        if unknown:
            raise Unsupported(f"{self.where}: config option(s) {', '.join(map(repr, unknown))} not supported")


# --------------------------------------------------------------------------------------------
# activations (keras.src.activations, TensorFlow backend)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, F32(1) / (F32(1) + e), e / (F32(1) + e)).astype(F32, copy=False)


def _softplus(x):
    return np.logaddexp(F32(0), x).astype(F32, copy=False)


def _softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis=-1):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _elu(x, alpha=1.0):
    res = np.where(x > 0, x, np.expm1(np.minimum(x, F32(0))))
    if alpha != 1:
        res = np.where(x > 0, res, F32(alpha) * res)
    return res.astype(F32, copy=False)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    neg = F32(_SELU_ALPHA) * np.expm1(np.minimum(x, F32(0)))
    return (F32(_SELU_SCALE) * np.where(x > 0, x, neg)).astype(F32, copy=False)


def _erf64(z):
    """erf in float64 to ~1e-15 (W. J. Cody's rational approximations, as in many libms)."""
    z = np.asarray(z, dtype=np.float64)
    a = np.abs(z)
    out = np.empty_like(a)
    small = a < 0.5
    if small.any():
        t = a[small] ** 2
        p = ((((1.857777061846031526730e-1 * t + 3.161123743870565596947) * t + 1.138641541510501556495e2) * t
              + 3.774852376853020208137e2) * t + 3.209377589138469472562e3)
        q = ((((t + 2.360129095234412093499e1) * t + 2.440246379344441733056e2) * t
              + 1.282616526077372275645e3) * t + 2.844236833439170622273e3)
        out[small] = a[small] * p / q
    mid = (~small) & (a < 4.0)
    if mid.any():
        y = a[mid]
        c = (2.15311535474403846343e-8, 5.64188496988670089180e-1, 8.88314979438837594118,
             6.61191906371416294775e1, 2.98635138197400131132e2, 8.81952221241769090411e2,
             1.71204761263407058314e3, 2.05107837782607146532e3, 1.23033935479799725272e3)
        d = (1.0, 1.57449261107098347253e1, 1.17693950891312499305e2, 5.37181101862009857509e2,
             1.62138957456669018874e3, 3.29079923573345962678e3, 4.36261909014324715820e3,
             3.43936767414372163696e3, 1.23033935480374942043e3)
        num = np.zeros_like(y)
        den = np.zeros_like(y)
        for k in range(9):
            num = num * y + c[k]
            den = den * y + d[k]
        out[mid] = 1.0 - np.exp(-y * y) * num / den
    big = a >= 4.0
    if big.any():
        y = a[big]
        r = 1.0 / (y * y)
        p = (1.63153871373020978498e-2, 3.05326634961232344035e-1, 3.60344899949804439429e-1,
             1.25781726111229246204e-1, 1.60837851487422766278e-2, 6.58749161529837803157e-4)
        q = (1.0, 2.56852019228982242072, 1.87295284992346725209, 5.27905102951428412248e-1,
             6.05183413124413191178e-2, 2.33520497626869185443e-3)
        num = np.zeros_like(y)
        den = np.zeros_like(y)
        for k in range(6):
            num = num * r + p[k]
            den = den * r + q[k]
        erfc = np.exp(-y * y) / y * (1.0 / math.sqrt(math.pi) - r * num / den)
        out[big] = 1.0 - erfc
    return np.copysign(out, z)


def _gelu(x):
    # keras.activations.gelu(x, approximate=False): 0.5 * x * (1 + erf(x / sqrt(2)))
    return (F32(0.5) * x * (F32(1) + _erf64(x.astype(np.float64) / math.sqrt(2.0)).astype(F32))).astype(F32)


def _hard_sigmoid(x):
    # TF backend: relu6(x + 3) / 6
    return np.clip(x + F32(3), F32(0), F32(6)) / F32(6)


_ACTIVATIONS = {
    "linear": None,
    "relu": lambda x: np.maximum(x, F32(0)),
    "relu6": lambda x: np.clip(x, F32(0), F32(6)),
    "leaky_relu": lambda x: np.where(x > 0, x, x * F32(0.2)),
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "softplus": _softplus,
    "softsign": lambda x: x / (F32(1) + np.abs(x)),
    "tanh": np.tanh,
    "exponential": np.exp,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}


def _relu_full(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """keras.src.activations.activations.ReLU.static_call, step by step."""
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x > 0, x, x * F32(negative_slope))
        if threshold != 0:
            negative_part = np.maximum(-x + F32(threshold), F32(0))
        else:
            negative_part = np.maximum(-x, F32(0))
    clip_max = max_value is not None
    if threshold != 0:
        y = np.where(x > F32(threshold), x, F32(0))
    elif max_value == 6:
        y = np.clip(x, F32(0), F32(6))
        clip_max = False
    else:
        y = np.maximum(x, F32(0))
    if clip_max:
        y = np.clip(y, F32(0), F32(max_value))
    if negative_slope != 0.0:
        y = y - F32(negative_slope) * negative_part
    return y.astype(F32, copy=False)


def _parse_activation(value, where):
    """A callable (or None for linear) for a Dense/Conv2D/Activation ``activation`` config value."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in _ACTIVATIONS:
            raise Unsupported(f"{where}: activation {value!r} is not supported")
        return _ACTIVATIONS[value]
    if isinstance(value, dict):
        cls = value.get("class_name")
        keys = set(value) - {"module", "class_name", "config", "registered_name", "shared_object_id"}
        if keys or value.get("registered_name") is not None:
            raise Unsupported(f"{where}: activation {value!r} is not supported")
        if value.get("module") == "keras.layers" and cls in _ACTIVATION_LAYERS:
            c = _Config(value.get("config"), cls)
            layer = _ACTIVATION_LAYERS[cls](c)
            c.finish()
            if isinstance(layer, _Softmax) and layer.axis != -1:
                raise Unsupported(f"{where}: activation Softmax(axis={layer.axis}) is not supported")
            return layer.call
        raise Unsupported(f"{where}: activation {cls!r} given as {value.get('module')!r} object is not supported")
    raise Unsupported(f"{where}: activation {value!r} is not supported")


# --------------------------------------------------------------------------------------------
# layers


def _compat(a, b):
    """Static shapes (no batch dimension) agree where both are known."""
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


def _shape_list(value, where, what, allow_none=True):
    if not isinstance(value, (list, tuple)):
        raise Unsupported(f"{where}: {what} {value!r} is not a shape")
    out = []
    for d in value:
        if d is None and allow_none:
            out.append(None)
        elif _is_int(d) and d >= 1:
            out.append(d)
        else:
            raise Unsupported(f"{where}: {what} {value!r} is not a shape")
    return tuple(out)


class _Layer:
    """One Keras layer: validates its config, infers shapes, holds weights, runs in NumPy."""

    class_name = ""
    is_model = False

    def __init__(self, c: _Config):
        self.name = c.name
        self.where = c.where
        self.build_shape = None  # the layer's build_config input shape, if any

    def weight_shapes(self):
        """Expected shapes of the layer's saved variables, in Keras' save order."""
        return []

    def set_weights(self, arrays):
        pass

    def build(self, shape):
        """Output shape (no batch dimension) for an input of ``shape``; Unsupported if invalid."""
        return shape

    def call(self, x):
        raise NotImplementedError


class _Identity(_Layer):
    """Layers that return their input unchanged when ``training`` is False."""

    def call(self, x):
        return x


class _Dropout(_Identity):
    class_name = "Dropout"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.number("rate", None, 0, 1)
        c.seed()
        ns = c.get("noise_shape")
        if ns is not None:
            _shape_list(ns, c.where, "noise_shape")


class _SpatialDropout2D(_Identity):
    class_name = "SpatialDropout2D"

    def __init__(self, c):
        super().__init__(c)
        c.base(trainable=False)
        c.number("rate", None, 0, 1)
        c.seed()
        c.channels_last()

    def build(self, shape):
        if len(shape) != 3:
            raise Unsupported(f"{self.where}: expects 4-D input, got {(None, *shape)}")
        return shape


class _GaussianNoise(_Identity):
    class_name = "GaussianNoise"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.number("stddev", None, 0, 1)
        c.seed()


class _GaussianDropout(_Identity):
    class_name = "GaussianDropout"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.number("rate", None, 0, 1)
        c.seed()


class _AlphaDropout(_Dropout):
    class_name = "AlphaDropout"


class _ActivityRegularization(_Identity):
    class_name = "ActivityRegularization"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.number("l1", 0.0, 0)
        c.number("l2", 0.0, 0)


def _factor(c, key, lo, hi, allow_none=False, open_low=False):
    v = c.get(key)
    if v is None and allow_none:
        return

    def ok(f):
        return _is_number(f) and (lo < f if open_low else lo <= f) and f <= hi

    if ok(v) or (isinstance(v, (list, tuple)) and len(v) == 2 and all(ok(f) for f in v)):
        return
    raise Unsupported(f"{c.where}: {key}={v!r} is not supported")


_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")


class _RandomImage(_Identity):
    """RandomRotation/Translation/Zoom/Flip/Contrast/Brightness: with training=False their
    ``transform_images`` casts to the compute dtype (float32) and returns the images unchanged
    (keras/src/layers/preprocessing/image_preprocessing/*.py)."""

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.seed()
        c.channels_last()
        if c.get("bounding_box_format") is not None:
            raise Unsupported(f"{c.where}: bounding_box_format is not supported")
        self.options(c)

    def options(self, c):
        pass

    def affine(self, c):
        if c.get("fill_mode", "reflect") not in _FILL_MODES:
            raise Unsupported(f"{c.where}: fill_mode={c.get('fill_mode')!r} is not supported")
        if c.get("interpolation", "bilinear") not in _INTERPOLATIONS:
            raise Unsupported(f"{c.where}: interpolation={c.get('interpolation')!r} is not supported")
        c.number("fill_value", 0.0)

    def build(self, shape):
        if len(shape) != 3:
            raise Unsupported(f"{self.where}: expects a batch of images (4-D input), got {(None, *shape)}")
        return shape


class _RandomRotation(_RandomImage):
    class_name = "RandomRotation"

    def options(self, c):
        _factor(c, "factor", -1, 1)
        self.affine(c)


class _RandomTranslation(_RandomImage):
    class_name = "RandomTranslation"

    def options(self, c):
        _factor(c, "height_factor", -1, 1)
        _factor(c, "width_factor", -1, 1)
        self.affine(c)


class _RandomZoom(_RandomImage):
    class_name = "RandomZoom"

    def options(self, c):
        _factor(c, "height_factor", -1, 1, open_low=True)
        _factor(c, "width_factor", -1, 1, allow_none=True, open_low=True)
        self.affine(c)


class _RandomFlip(_RandomImage):
    class_name = "RandomFlip"

    def options(self, c):
        if c.get("mode", "horizontal_and_vertical") not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise Unsupported(f"{c.where}: mode={c.get('mode')!r} is not supported")


class _RandomContrast(_RandomImage):
    class_name = "RandomContrast"

    def options(self, c):
        _factor(c, "factor", 0, 1)
        vr = c.get("value_range", [0, 255])
        if not (isinstance(vr, (list, tuple)) and len(vr) == 2 and all(_is_number(v) for v in vr)):
            raise Unsupported(f"{c.where}: value_range={vr!r} is not supported")


class _RandomBrightness(_RandomContrast):
    class_name = "RandomBrightness"

    def options(self, c):
        _factor(c, "factor", -1, 1)
        vr = c.get("value_range", [0, 255])
        if not (isinstance(vr, (list, tuple)) and len(vr) == 2 and all(_is_number(v) for v in vr)):
            raise Unsupported(f"{c.where}: value_range={vr!r} is not supported")


class _Activation(_Layer):
    class_name = "Activation"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        self.fn = _parse_activation(c.get("activation"), c.where)

    def call(self, x):
        return x if self.fn is None else self.fn(x)


class _ReLU(_Layer):
    class_name = "ReLU"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        mv = c.get("max_value")
        if mv is not None and not (_is_number(mv) and mv >= 0):
            raise Unsupported(f"{c.where}: max_value={mv!r} is not supported")
        self.max_value = mv
        self.negative_slope = c.number("negative_slope", 0.0, 0)
        self.threshold = c.number("threshold", 0.0, 0)

    def call(self, x):
        return _relu_full(x, self.negative_slope, self.max_value, self.threshold)


class _LeakyReLU(_Layer):
    class_name = "LeakyReLU"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        if c.has("alpha"):  # deprecated spelling accepted by Keras' __init__
            if c.has("negative_slope"):
                raise Unsupported(f"{c.where}: both alpha and negative_slope given")
            self.slope = c.number("alpha", None, 0)
        else:
            self.slope = c.number("negative_slope", 0.3, 0)

    def call(self, x):
        return np.where(x > 0, x, x * F32(self.slope))


class _ELU(_Layer):
    class_name = "ELU"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        # ELU.get_config() does not save alpha, so a reloaded layer has alpha=1.0 unless the key is there.
        self.alpha = c.number("alpha", 1.0)

    def call(self, x):
        return _elu(x, self.alpha)


class _Softmax(_Layer):
    class_name = "Softmax"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        axis = c.get("axis", -1)
        if isinstance(axis, list) and len(axis) == 1:
            axis = axis[0]
        if not _is_int(axis):
            raise Unsupported(f"{c.where}: axis={axis!r} is not supported")
        self.axis = axis

    def build(self, shape):
        rank = len(shape) + 1
        if self.axis not in (-1, rank - 1) or rank < 2:
            raise Unsupported(f"{self.where}: axis={self.axis} is not supported (last axis only)")
        return shape

    def call(self, x):
        return _softmax(x, -1)


class _PReLU(_Layer):
    class_name = "PReLU"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.ignore_objects(alpha_initializer="initializer", alpha_regularizer="regularizer",
                         alpha_constraint="constraint")
        sa = c.get("shared_axes")
        if sa is not None:
            if _is_int(sa):
                sa = [sa]
            if not isinstance(sa, list) or not all(_is_int(a) and a >= 1 for a in sa):
                raise Unsupported(f"{c.where}: shared_axes={sa!r} is not supported")
        self.shared_axes = sa

    def build(self, shape):
        param = list(shape)
        for a in self.shared_axes or []:
            if a > len(shape):
                raise Unsupported(f"{self.where}: shared_axes={self.shared_axes} out of range for {(None, *shape)}")
            param[a - 1] = 1
        if any(d is None for d in param):
            raise Unsupported(f"{self.where}: needs a fully known input shape, got {(None, *shape)}")
        self.alpha_shape = tuple(param)
        return shape

    def weight_shapes(self):
        return [self.alpha_shape]

    def set_weights(self, arrays):
        (self.alpha,) = arrays

    def call(self, x):
        return np.maximum(x, F32(0)) - self.alpha * np.maximum(-x, F32(0))


_ACTIVATION_LAYERS = {
    "Activation": _Activation,
    "ReLU": _ReLU,
    "LeakyReLU": _LeakyReLU,
    "ELU": _ELU,
    "Softmax": _Softmax,
}


class _Dense(_Layer):
    class_name = "Dense"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        units = c.get("units")
        if not _is_int(units) or units <= 0:
            raise Unsupported(f"{c.where}: units={units!r} is not supported")
        self.units = units
        self.act = _parse_activation(c.get("activation"), c.where)
        self.use_bias = c.boolean("use_bias", True)
        c.ignore_objects(kernel_initializer="initializer", bias_initializer="initializer",
                         kernel_regularizer="regularizer", bias_regularizer="regularizer",
                         kernel_constraint="constraint", bias_constraint="constraint")
        if c.get("quantization_config") is not None:
            raise Unsupported(f"{c.where}: quantization is not supported")
        if c.get("lora_rank"):
            raise Unsupported(f"{c.where}: LoRA (lora_rank={c.get('lora_rank')!r}) is not supported")
        if c.get("lora_alpha") is not None:
            raise Unsupported(f"{c.where}: lora_alpha is not supported")

    def build(self, shape):
        if len(shape) < 1 or shape[-1] is None:
            raise Unsupported(f"{self.where}: needs a known last input dimension, got {(None, *shape)}")
        self.n_in = shape[-1]
        return shape[:-1] + (self.units,)

    def weight_shapes(self):
        return [(self.n_in, self.units)] + ([(self.units,)] if self.use_bias else [])

    def set_weights(self, arrays):
        self.kernel = arrays[0]
        self.bias = arrays[1] if self.use_bias else None

    def call(self, x):
        if x.ndim == 2:
            y = x @ self.kernel
        else:
            y = (x.reshape(-1, x.shape[-1]) @ self.kernel).reshape(x.shape[:-1] + (self.units,))
        if self.bias is not None:
            y += self.bias
        return _apply_inplace(self.act, y)


def _apply_inplace(fn, y):
    """Apply an activation to a freshly computed array, in place where that is exact."""
    if fn is None:
        return y
    if fn is _ACTIVATIONS["relu"]:
        return np.maximum(y, F32(0), out=y)
    if fn is _ACTIVATIONS["softmax"]:
        y -= np.max(y, axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= np.sum(y, axis=-1, keepdims=True)
        return y
    return fn(y)


def _same_padding(size, k, stride, dilation=1):
    """TensorFlow's SAME padding: (output size, pad before, pad after)."""
    out = -(-size // stride)
    eff = (k - 1) * dilation + 1
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2, total - total // 2


def _valid_out(size, k, stride, dilation=1):
    eff = (k - 1) * dilation + 1
    return (size - eff) // stride + 1 if size >= eff else 0


def _padding(c, key="padding"):
    p = c.get(key, "valid")
    if not isinstance(p, str) or p.lower() not in ("valid", "same"):
        raise Unsupported(f"{c.where}: padding={p!r} is not supported")
    return p.lower()


class _Conv2D(_Layer):
    class_name = "Conv2D"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        filters = c.get("filters")
        if not _is_int(filters) or filters <= 0:
            raise Unsupported(f"{c.where}: filters={filters!r} is not supported")
        self.filters = filters
        self.kernel_size = _int_tuple(c.get("kernel_size"), 2, "kernel_size", c.where)
        self.strides = _int_tuple(c.get("strides", 1), 2, "strides", c.where)
        self.dilation = _int_tuple(c.get("dilation_rate", 1), 2, "dilation_rate", c.where)
        if max(self.strides) > 1 and max(self.dilation) > 1:
            raise Unsupported(f"{c.where}: strides > 1 together with dilation_rate > 1")
        self.padding = _padding(c)
        c.channels_last()
        c.must("groups", 1, 1)
        self.act = _parse_activation(c.get("activation"), c.where)
        self.use_bias = c.boolean("use_bias", True)
        c.ignore_objects(kernel_initializer="initializer", bias_initializer="initializer",
                         kernel_regularizer="regularizer", bias_regularizer="regularizer",
                         kernel_constraint="constraint", bias_constraint="constraint")
        if c.get("lora_rank"):
            raise Unsupported(f"{c.where}: LoRA (lora_rank={c.get('lora_rank')!r}) is not supported")
        if c.get("lora_alpha") is not None:
            raise Unsupported(f"{c.where}: lora_alpha is not supported")

    def build(self, shape):
        if len(shape) != 3 or shape[2] is None:
            raise Unsupported(f"{self.where}: expects 4-D input with known channels, got {(None, *shape)}")
        self.n_in = shape[2]
        out = []
        for size, k, s, d in zip(shape[:2], self.kernel_size, self.strides, self.dilation):
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append(_same_padding(size, k, s, d)[0])
            else:
                o = _valid_out(size, k, s, d)
                if o <= 0:
                    raise Unsupported(f"{self.where}: empty output for input {(None, *shape)}")
                out.append(o)
        return (out[0], out[1], self.filters)

    def weight_shapes(self):
        return [self.kernel_size + (self.n_in, self.filters)] + ([(self.filters,)] if self.use_bias else [])

    def set_weights(self, arrays):
        kh, kw = self.kernel_size
        self.kernel = arrays[0]
        self.kmat = np.ascontiguousarray(arrays[0].reshape(kh * kw * self.n_in, self.filters))
        self.bias = arrays[1] if self.use_bias else None

    defer = False  # bias and activation applied by the next MaxPooling2D (see _Sequential)

    def call(self, x):
        b, h, w, cin = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.strides
        dh, dw = self.dilation
        if self.padding == "same":
            ho, pt, pb = _same_padding(h, kh, sh, dh)
            wo, pl, pr = _same_padding(w, kw, sw, dw)
            if pt or pb or pl or pr:
                x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        else:
            ho, wo = _valid_out(h, kh, sh, dh), _valid_out(w, kw, sw, dw)
            if ho <= 0 or wo <= 0:
                raise ValueError(f"{self.where}: input {x.shape[1:]} is too small for the kernel")
        if kh == kw == 1:
            cols = x[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, :]
        else:
            # im2col: windows (b, ho, wo, cin, kh, kw) -> (b, ho, wo, kh, kw, cin), copied once by the
            # reshape below (numpy merges the contiguous (kw, cin) run); one matmul for the batch.
            eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
            win = sliding_window_view(x, (eh, ew), axis=(1, 2))
            win = win[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, :, ::dh, ::dw]
            cols = win.transpose(0, 1, 2, 4, 5, 3)
        y = cols.reshape(b * ho * wo, kh * kw * cin) @ self.kmat
        if not self.defer:
            if self.bias is not None:
                y += self.bias
            y = _apply_inplace(self.act, y)
        return y.reshape(b, ho, wo, self.filters)


class _Pool2D(_Layer):
    mode = "max"
    post = None  # (bias, activation) deferred from the Conv2D before it

    def __init__(self, c):
        super().__init__(c)
        c.base()
        self.pool = _int_tuple(c.get("pool_size", 2), 2, "pool_size", c.where)
        strides = c.get("strides")
        self.strides = self.pool if strides is None else _int_tuple(strides, 2, "strides", c.where)
        self.padding = _padding(c)
        c.channels_last()

    def build(self, shape):
        if len(shape) != 3:
            raise Unsupported(f"{self.where}: expects 4-D input, got {(None, *shape)}")
        out = []
        for size, k, s in zip(shape[:2], self.pool, self.strides):
            if size is None:
                out.append(None)
            elif self.padding == "same":
                out.append(_same_padding(size, k, s)[0])
            else:
                o = _valid_out(size, k, s)
                if o <= 0:
                    raise Unsupported(f"{self.where}: empty output for input {(None, *shape)}")
                out.append(o)
        return (out[0], out[1], shape[2])

    def call(self, x):
        b, h, w, ch = x.shape
        kh, kw = self.pool
        sh, sw = self.strides
        pad = None
        if self.padding == "same":
            ho, pt, pb = _same_padding(h, kh, sh)
            wo, pl, pr = _same_padding(w, kw, sw)
            if pt or pb or pl or pr:
                pad = ((pt, pb), (pl, pr))
                fill = -np.inf if self.mode == "max" else 0.0
                x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
        else:
            ho, wo = _valid_out(h, kh, sh), _valid_out(w, kw, sw)
            if ho <= 0 or wo <= 0:
                raise ValueError(f"{self.where}: input {x.shape[1:]} is too small for the pool")
        if (kh, kw) == (sh, sw) and x.shape[1] >= ho * kh and x.shape[2] >= wo * kw:
            # non-overlapping windows: reduce window rows, then window columns, over contiguous runs
            x = x[:, : ho * kh, : wo * kw, :]
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            v = x.reshape(b, ho, kh, wo * kw * ch)
            rows = v[:, :, 0].copy()
            for i in range(1, kh):
                if self.mode == "max":
                    np.maximum(rows, v[:, :, i], out=rows)
                else:
                    rows += v[:, :, i]
            r = rows.reshape(b, ho, wo, kw * ch)
            out = r[..., :ch].copy()
            for j in range(1, kw):
                if self.mode == "max":
                    np.maximum(out, r[..., j * ch : (j + 1) * ch], out=out)
                else:
                    out += r[..., j * ch : (j + 1) * ch]
        else:
            out = None
            for i in range(kh):
                for j in range(kw):
                    s = x[:, i : i + (ho - 1) * sh + 1 : sh, j : j + (wo - 1) * sw + 1 : sw, :]
                    if out is None:
                        out = s.copy()
                    elif self.mode == "max":
                        np.maximum(out, s, out=out)
                    else:
                        out += s
        if self.mode == "average":
            if pad is None:
                out /= F32(kh * kw)
            else:
                ones = np.pad(np.ones((h, w), dtype=F32), pad)
                count = np.zeros((ho, wo), dtype=F32)
                for i in range(kh):
                    for j in range(kw):
                        count += ones[i : i + (ho - 1) * sh + 1 : sh, j : j + (wo - 1) * sw + 1 : sw]
                out /= count[None, :, :, None]
        if self.post is not None:
            bias, act = self.post
            if bias is not None:
                out += bias
            out = _apply_inplace(act, out)
        return out


class _MaxPooling2D(_Pool2D):
    class_name = "MaxPooling2D"
    mode = "max"


class _AveragePooling2D(_Pool2D):
    class_name = "AveragePooling2D"
    mode = "average"


class _GlobalPool2D(_Layer):
    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.channels_last()
        self.keepdims = c.boolean("keepdims", False)

    def build(self, shape):
        if len(shape) != 3:
            raise Unsupported(f"{self.where}: expects 4-D input, got {(None, *shape)}")
        return (1, 1, shape[2]) if self.keepdims else (shape[2],)


class _GlobalAveragePooling2D(_GlobalPool2D):
    class_name = "GlobalAveragePooling2D"

    def call(self, x):
        return np.mean(x, axis=(1, 2), keepdims=self.keepdims, dtype=F32)


class _GlobalMaxPooling2D(_GlobalPool2D):
    class_name = "GlobalMaxPooling2D"

    def call(self, x):
        return np.max(x, axis=(1, 2), keepdims=self.keepdims)


class _Flatten(_Layer):
    class_name = "Flatten"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.channels_last()

    def build(self, shape):
        if any(d is None for d in shape):
            raise Unsupported(f"{self.where}: input {(None, *shape)} has unknown dimensions")
        return (math.prod(shape),) if shape else (1,)

    def call(self, x):
        return x.reshape(x.shape[0], -1)


class _Reshape(_Layer):
    class_name = "Reshape"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        t = c.get("target_shape")
        if not isinstance(t, (list, tuple)) or not all(_is_int(d) and (d > 0 or d == -1) for d in t):
            raise Unsupported(f"{c.where}: target_shape={t!r} is not supported")
        if sum(d == -1 for d in t) > 1:
            raise Unsupported(f"{c.where}: target_shape={t!r} has more than one -1")
        self.target = tuple(t)

    def build(self, shape):
        if any(d is None for d in shape):
            raise Unsupported(f"{self.where}: input {(None, *shape)} has unknown dimensions")
        n = math.prod(shape)
        known = math.prod(d for d in self.target if d != -1)
        if -1 in self.target:
            if known == 0 or n % known:
                raise Unsupported(f"{self.where}: cannot reshape {shape} to {self.target}")
            self.out = tuple(n // known if d == -1 else d for d in self.target)
        else:
            if known != n:
                raise Unsupported(f"{self.where}: cannot reshape {shape} to {self.target}")
            self.out = self.target
        return self.out

    def call(self, x):
        return x.reshape((x.shape[0],) + self.out)


class _ZeroPadding2D(_Layer):
    class_name = "ZeroPadding2D"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        c.channels_last()
        p = c.get("padding", [[1, 1], [1, 1]])
        if _is_int(p):
            p = [[p, p], [p, p]]
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise Unsupported(f"{c.where}: padding={p!r} is not supported")
        self.pad = tuple(_int_tuple(q, 2, "padding", c.where, minimum=0) for q in p)

    def build(self, shape):
        if len(shape) != 3:
            raise Unsupported(f"{self.where}: expects 4-D input, got {(None, *shape)}")
        h, w, ch = shape
        (t, b), (l, r) = self.pad
        return (None if h is None else h + t + b, None if w is None else w + l + r, ch)

    def call(self, x):
        return np.pad(x, ((0, 0), self.pad[0], self.pad[1], (0, 0)))


def _scale_value(v, where, key):
    if _is_number(v):
        return F32(v)
    if isinstance(v, list) and v and all(_is_number(e) for e in v):
        return np.asarray(v, dtype=F32)
    raise Unsupported(f"{where}: {key}={v!r} is not supported (a number or a list of numbers)")


class _Rescaling(_Layer):
    class_name = "Rescaling"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        self.scale = _scale_value(c.get("scale"), c.where, "scale")
        self.offset = _scale_value(c.get("offset", 0.0), c.where, "offset")

    def build(self, shape):
        for v in (self.scale, self.offset):
            if np.ndim(v) == 1 and len(v) != 1:
                if not shape or shape[-1] != len(v):
                    raise Unsupported(f"{self.where}: {len(v)} values do not match input {(None, *shape)}")
        return shape

    def call(self, x):
        y = x * self.scale
        y += self.offset
        return y


class _Normalization(_Layer):
    class_name = "Normalization"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        axis = c.get("axis", -1)
        if axis is None:
            axis = []
        elif _is_int(axis):
            axis = [axis]
        if not isinstance(axis, list) or not all(_is_int(a) for a in axis):
            raise Unsupported(f"{c.where}: axis={axis!r} is not supported")
        self.axis = tuple(axis)
        c.must("invert", False, False)
        mean, var = c.get("mean"), c.get("variance")
        if (mean is None) != (var is None):
            raise Unsupported(f"{c.where}: mean and variance must both be given")
        self.given = None
        if mean is not None:
            try:
                m = np.asarray(mean, dtype=np.float64)
                v = np.asarray(var, dtype=np.float64)
            except (TypeError, ValueError):
                raise Unsupported(f"{c.where}: mean/variance are not numbers") from None
            if m.shape != v.shape or m.ndim > len(self.axis) or not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))):
                raise Unsupported(f"{c.where}: mean/variance shapes {m.shape}, {v.shape} are not supported")
            self.given = (m, v)

    def build(self, shape):
        # Keras builds the layer from its build_config (the shape adapt() saw), else from the input.
        bshape = shape if self.build_shape is None else self.build_shape[1:]
        ndim = len(bshape) + 1
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise Unsupported(f"{self.where}: axis={self.axis} out of range")
        keep = tuple(sorted(a + ndim if a < 0 else a for a in self.axis))
        if 0 in keep:
            raise Unsupported(f"{self.where}: normalizing over the batch axis is not supported")
        full = (None,) + tuple(bshape)
        if any(full[d] is None for d in keep):
            raise Unsupported(f"{self.where}: kept axes must have known sizes")
        self.bcast = tuple(full[d] if d in keep else 1 for d in range(ndim))
        self.mv_shape = tuple(full[d] for d in keep)
        if len(bshape) != len(shape) or not all(
            self.bcast[d + 1] in (1, shape[d]) for d in range(len(shape))
        ):
            raise Unsupported(f"{self.where}: built for {full}, used on {(None, *shape)}")
        if self.given is not None:
            m, v = self.given
            if m.ndim:
                expanded = [1] * ndim
                for i in range(1, m.ndim + 1):
                    expanded[keep[-i]] = m.shape[-i]
                m, v = m.reshape(expanded), v.reshape(expanded)
            try:
                m = np.broadcast_to(m, self.bcast)
                v = np.broadcast_to(v, self.bcast)
            except ValueError:
                raise Unsupported(f"{self.where}: mean/variance do not broadcast to {self.bcast}") from None
            self._set(m.astype(F32), v.astype(F32))
        return shape

    def weight_shapes(self):
        return [] if self.given is not None else [self.mv_shape, self.mv_shape, ()]

    def set_weights(self, arrays):
        if self.given is None:
            self._set(arrays[0].reshape(self.bcast), arrays[1].reshape(self.bcast))

    def _set(self, mean, var):
        self.mean = np.ascontiguousarray(mean[0] if mean.ndim else mean, dtype=F32)
        self.denom = np.maximum(np.sqrt(np.asarray(var, dtype=F32)), F32(KERAS_EPSILON))
        self.denom = np.ascontiguousarray(self.denom[0] if self.denom.ndim else self.denom)

    def call(self, x):
        y = x - self.mean
        y /= self.denom
        return y


class _BatchNormalization(_Layer):
    class_name = "BatchNormalization"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        self.axis = c.axis()
        c.number("momentum", 0.99)
        self.epsilon = c.number("epsilon", 1e-3, 0)
        self.center = c.boolean("center", True)
        self.scale = c.boolean("scale", True)
        c.ignore_objects(beta_initializer="initializer", gamma_initializer="initializer",
                         moving_mean_initializer="initializer", moving_variance_initializer="initializer",
                         beta_regularizer="regularizer", gamma_regularizer="regularizer",
                         beta_constraint="constraint", gamma_constraint="constraint")
        c.boolean("synchronized", False)  # only changes how training computes batch moments
        c.must("renorm", False, False)
        if c.get("renorm_clipping") is not None:
            raise Unsupported(f"{c.where}: renorm_clipping is not supported")
        c.number("renorm_momentum", 0.99)

    def build(self, shape):
        rank = len(shape) + 1
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank or shape[axis - 1] is None:
            raise Unsupported(f"{self.where}: axis={self.axis} is not supported for input {(None, *shape)}")
        self.n = shape[axis - 1]
        self.bshape = tuple(self.n if d == axis else 1 for d in range(1, rank))
        return shape

    def weight_shapes(self):
        return [(self.n,)] * (int(self.scale) + int(self.center) + 2)

    def set_weights(self, arrays):
        arrays = list(arrays)
        gamma = arrays.pop(0) if self.scale else None
        beta = arrays.pop(0) if self.center else None
        mean, var = arrays
        # tf.nn.batch_normalization: inv = rsqrt(var + eps) * gamma; x * inv + (beta - mean * inv)
        inv = F32(1) / np.sqrt(var + F32(self.epsilon))
        if gamma is not None:
            inv = inv * gamma
        off = (beta - mean * inv) if beta is not None else -mean * inv
        self.mul = inv.astype(F32).reshape(self.bshape)
        self.add = off.astype(F32).reshape(self.bshape)

    def call(self, x):
        y = x * self.mul
        y += self.add
        return y


class _Merge(_Layer):
    n_inputs = "many"


class _Add(_Merge):
    class_name = "Add"

    def __init__(self, c):
        super().__init__(c)
        c.base()

    def build(self, shapes):
        first = shapes[0]
        for s in shapes[1:]:
            if s != first:
                raise Unsupported(f"{self.where}: inputs of different shapes {shapes} (broadcasting not supported)")
        return first

    def call(self, xs):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y


class _Concatenate(_Merge):
    class_name = "Concatenate"

    def __init__(self, c):
        super().__init__(c)
        c.base()
        self.axis = c.axis()

    def build(self, shapes):
        rank = len(shapes[0]) + 1
        axis = self.axis + rank if self.axis < 0 else self.axis
        if not 1 <= axis < rank or any(len(s) + 1 != rank for s in shapes):
            raise Unsupported(f"{self.where}: axis={self.axis} with inputs {shapes} is not supported")
        out = list(shapes[0])
        for s in shapes[1:]:
            for d in range(rank - 1):
                if d != axis - 1 and s[d] != out[d]:
                    raise Unsupported(f"{self.where}: inputs {shapes} do not match off the concatenation axis")
            out[axis - 1] = None if out[axis - 1] is None or s[axis - 1] is None else out[axis - 1] + s[axis - 1]
        self.np_axis = axis
        return tuple(out)

    def call(self, xs):
        return np.concatenate(xs, axis=self.np_axis)


_LAYERS = {
    cls.class_name: cls
    for cls in (
        _Dense, _Conv2D, _MaxPooling2D, _AveragePooling2D, _GlobalAveragePooling2D, _GlobalMaxPooling2D,
        _Flatten, _Reshape, _ZeroPadding2D, _Dropout, _SpatialDropout2D, _GaussianNoise, _GaussianDropout,
        _AlphaDropout, _ActivityRegularization, _RandomRotation, _RandomTranslation, _RandomZoom,
        _RandomFlip, _RandomContrast, _RandomBrightness, _Rescaling, _Normalization,
        _BatchNormalization, _Activation, _ReLU, _LeakyReLU, _ELU, _Softmax, _PReLU, _Add, _Concatenate,
    )
}

# Keras layers whose presence is reported with a specific reason.
_REFUSED = {
    "Lambda": "carries Python code",
    "TFSMLayer": "wraps a TensorFlow SavedModel",
}


# --------------------------------------------------------------------------------------------
# models


_WRAPPER_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "compile_config",
                 "name", "inbound_nodes", "shared_object_id"}
_MODEL_MODULES = {
    "Sequential": ("keras", "keras.models", "keras.src.models.sequential"),
    "Functional": ("keras", "keras.models", "keras.src.models.functional"),
}


def _build_shape(entry, where):
    """The ``build_config`` input shape (with the batch dimension), a list of them for merge layers."""
    bc = entry.get("build_config")
    if bc is None:
        return None
    if not isinstance(bc, dict) or set(bc) - {"input_shape"}:
        raise Unsupported(f"{where}: build_config {bc!r} is not supported")
    if not bc:
        return None
    shape = bc.get("input_shape")
    if shape is None:
        # Layer.build_from_config would call build(None); only a Functional model skips that.
        if entry.get("class_name") == "Functional":
            return None
        raise Unsupported(f"{where}: build_config without an input shape is not supported")
    if isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        return [_shape_list(s, where, "build input_shape") for s in shape]
    if not isinstance(shape, list) or not shape:
        raise Unsupported(f"{where}: build_config input_shape {shape!r} is not supported")
    return _shape_list(shape, where, "build input_shape")


def _parse_entry(entry, context):
    """A layer or nested model from its serialized ``{"module", "class_name", "config"}`` dict."""
    if not isinstance(entry, dict):
        raise Unsupported(f"malformed model file: a layer entry in {context} is not an object")
    cls = entry.get("class_name")
    if not isinstance(cls, str):
        raise Unsupported(f"malformed model file: a layer entry in {context} has no class_name")
    extra = set(entry) - _WRAPPER_KEYS
    if extra:
        raise Unsupported(f"a {cls} entry in {context} has unknown keys {sorted(extra)}")
    if not isinstance(entry.get("compile_config", {}), (dict, type(None))):
        raise Unsupported(f"malformed model file: compile_config of a {cls} entry is not an object")
    cfg = entry.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    where = _where(name, cls)
    if entry.get("registered_name") not in (None, cls if cls in _MODEL_MODULES else None):
        raise Unsupported(f"{where}: custom (registered) class {entry.get('registered_name')!r} is not supported")
    if cls in _MODEL_MODULES:
        if entry.get("module") not in _MODEL_MODULES[cls]:
            raise Unsupported(f"{where}: module {entry.get('module')!r} is not supported")
        model = _Sequential(cfg) if cls == "Sequential" else _Functional(cfg)
        model.build_shape = _build_shape(entry, where)
        return model
    if cls in _REFUSED:
        raise Unsupported(f"{where}: layer type {cls} is not supported ({_REFUSED[cls]})")
    if cls not in _LAYERS or cls == "InputLayer":
        raise Unsupported(f"{where}: layer type {cls} is not supported")
    if entry.get("module") != "keras.layers":
        raise Unsupported(f"{where}: module {entry.get('module')!r} is not supported")
    c = _Config(cfg, cls)
    layer = _LAYERS[cls](c)
    c.finish()
    layer.build_shape = _build_shape(entry, where)
    return layer


def _parse_input_layer(entry, context):
    if not isinstance(entry, dict) or entry.get("class_name") != "InputLayer":
        raise Unsupported(f"malformed model file: expected an InputLayer in {context}")
    extra = set(entry) - _WRAPPER_KEYS
    if extra:
        raise Unsupported(f"an InputLayer entry in {context} has unknown keys {sorted(extra)}")
    if entry.get("module") != "keras.layers" or entry.get("registered_name") is not None:
        raise Unsupported(f"InputLayer in {context}: module {entry.get('module')!r} is not supported")
    c = _Config(entry.get("config"), "InputLayer")
    c.seen.add("name")
    bs = c.get("batch_shape") if c.has("batch_shape") else c.get("batch_input_shape")
    c.seen.add("batch_input_shape")
    if c.has("batch_shape") and c.has("batch_input_shape"):
        raise Unsupported(f"{c.where}: both batch_shape and batch_input_shape given")
    if not isinstance(bs, list) or len(bs) < 2:
        raise Unsupported(f"{c.where}: batch_shape={bs!r} is not supported")
    # A Sequential built by fit() without keras.Input records its first batch size here; Keras
    # ignores it when predicting (every layer works per sample), and so do we.
    shape = _shape_list(bs, c.where, "batch_shape")[1:]
    if c.get("dtype") != "float32":
        raise Unsupported(f"{c.where}: input dtype {c.get('dtype')!r} is not supported (float32 only)")
    c.must("sparse", False, False)
    c.must("ragged", False, False)
    c.must("optional", False, False)
    c.finish()
    return c.name, shape


class _Model(_Layer):
    is_model = True

    def children(self):
        """The layers in Keras' ``model.layers`` order (the weight file's order)."""
        raise NotImplementedError


class _Sequential(_Model):
    class_name = "Sequential"

    def __init__(self, cfg):
        c = _Config(cfg, "Sequential")
        super().__init__(c)
        c.base(dtype=False)
        layers = c.get("layers")
        if not isinstance(layers, list) or not layers:
            raise Unsupported(f"{c.where}: has no layers")
        self.declared_input = None
        self.input_name = None
        if isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer":
            self.input_name, self.declared_input = _parse_input_layer(layers[0], c.where)
            layers = layers[1:]
        bis = c.get("build_input_shape")
        if bis is not None:
            if not isinstance(bis, list) or not bis:
                raise Unsupported(f"{c.where}: build_input_shape={bis!r} is not supported")
            bis = _shape_list(bis, c.where, "build_input_shape")[1:]
            if self.declared_input is None:
                self.declared_input = bis
            elif bis != self.declared_input:
                raise Unsupported(f"{c.where}: build_input_shape does not match its InputLayer")
        self.layers = [_parse_entry(e, c.where) for e in layers]
        if not self.layers:
            raise Unsupported(f"{c.where}: has no layers")
        names = [self.input_name] if self.input_name is not None else []
        names += [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise Unsupported(f"{c.where}: layer names are not unique")
        for layer in self.layers:
            if isinstance(layer, _Merge):
                raise Unsupported(f"{layer.where}: merge layers need a Functional model")
        c.finish()

    def children(self):
        return self.layers

    def build(self, shape):
        if self.declared_input is not None and not _compat(shape, self.declared_input):
            raise Unsupported(f"{self.where}: declared input {(None, *self.declared_input)} "
                              f"does not match {(None, *shape)}")
        for layer in self.layers:
            shape = _build_layer(layer, shape)
        return shape

    def call(self, x):
        for layer in self.layers:
            x = layer.call(x)
        return x


def _tensor_ref(t, where):
    """``(layer_name, shape)`` of a serialized ``__keras_tensor__`` produced by a layer's first node."""
    if not isinstance(t, dict) or t.get("class_name") != "__keras_tensor__" or set(t) != {"class_name", "config"}:
        raise Unsupported(f"{where}: a call argument is not a Keras tensor (constants are not supported)")
    cfg = t.get("config")
    if not isinstance(cfg, dict) or set(cfg) != {"shape", "dtype", "keras_history"}:
        raise Unsupported(f"{where}: malformed tensor reference {t!r}")
    hist = cfg.get("keras_history")
    if not (isinstance(hist, list) and len(hist) == 3 and isinstance(hist[0], str)):
        raise Unsupported(f"{where}: malformed tensor reference {t!r}")
    if hist[1] != 0 or hist[2] != 0 or not _is_int(hist[1]) or not _is_int(hist[2]):
        raise Unsupported(f"{where}: uses output {hist[1:]} of layer {hist[0]!r}; only single-use, "
                          "single-output layers are supported")
    shape = cfg.get("shape")
    if not isinstance(shape, list) or not shape:
        raise Unsupported(f"{where}: malformed tensor shape {shape!r}")
    shape = _shape_list(shape, where, "tensor shape")[1:]
    if cfg.get("dtype") != "float32":
        raise Unsupported(f"{where}: tensor dtype {cfg.get('dtype')!r} is not supported")
    return hist[0], shape


def _io_ref(value, where, what):
    """``input_layers`` / ``output_layers``: exactly one ``[name, 0, 0]``."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
        raise Unsupported(f"{where}: {what} {value!r} is not supported (one input and one output only)")
    if value[1] != 0 or value[2] != 0 or not _is_int(value[1]) or not _is_int(value[2]):
        raise Unsupported(f"{where}: {what} {value!r} is not supported")
    return value[0]


class _InputStub(_Layer):
    """A Functional model's InputLayer: part of ``model.layers`` (so of the weight naming), no weights."""

    class_name = "InputLayer"

    def __init__(self, name):
        self.name = name
        self.where = _where(name, "InputLayer")
        self.build_shape = None


class _Node:
    is_input = False

    def __init__(self, name, layer, parents, merge, recorded_shapes):
        self.name = name
        self.layer = layer
        self.parents = parents  # names of the layers whose outputs this node consumes, in order
        self.merge = merge  # the call takes a list of tensors
        self.recorded_shapes = recorded_shapes


class _Functional(_Model):
    class_name = "Functional"

    def __init__(self, cfg):
        c = _Config(cfg, "Functional")
        super().__init__(c)
        c.base(dtype=False)
        entries = c.get("layers")
        if not isinstance(entries, list) or not entries:
            raise Unsupported(f"{c.where}: has no layers")
        nodes = {}
        order = []  # config order
        for entry in entries:
            if not isinstance(entry, dict):
                raise Unsupported(f"malformed model file: a layer entry in {c.where} is not an object")
            name = entry.get("name")
            cname = entry.get("config", {}).get("name") if isinstance(entry.get("config"), dict) else None
            if not isinstance(name, str) or name != cname:
                raise Unsupported(f"malformed model file: layer entry names {name!r} / {cname!r} in {c.where}")
            if name in nodes:
                raise Unsupported(f"{c.where}: layer name {name!r} is used twice")
            inbound = entry.get("inbound_nodes")
            if not isinstance(inbound, list):
                raise Unsupported(f"malformed model file: layer {name!r} has no inbound_nodes")
            if entry.get("class_name") == "InputLayer":
                _, shape = _parse_input_layer(entry, c.where)
                if inbound:
                    raise Unsupported(f"{c.where}: InputLayer {name!r} has inbound nodes")
                node = _Node(name, _InputStub(name), [], False, None)
                node.is_input = True
                node.shape = shape
            else:
                layer = _parse_entry(entry, c.where)
                if len(inbound) != 1:
                    raise Unsupported(f"{layer.where}: is called {len(inbound)} times; shared (reused) layers "
                                      "are not supported" if inbound else f"{layer.where}: is never called")
                node = self._parse_node(layer, inbound[0])
            nodes[name] = node
            order.append(name)
        self.input_name = _io_ref(c.get("input_layers"), c.where, "input_layers")
        self.output_name = _io_ref(c.get("output_layers"), c.where, "output_layers")
        if self.input_name not in nodes or not nodes[self.input_name].is_input:
            raise Unsupported(f"{c.where}: input {self.input_name!r} is not an InputLayer of the model")
        if self.output_name not in nodes:
            raise Unsupported(f"{c.where}: output layer {self.output_name!r} is not in the model")
        for node in nodes.values():
            for p in node.parents:
                if p not in nodes:
                    raise Unsupported(f"{c.where}: layer {node.name!r} consumes unknown layer {p!r}")
        self.nodes = nodes
        self.operations = self._map_graph()
        if set(self.operations) != set(nodes):
            unused = sorted(set(nodes) - set(self.operations))
            raise Unsupported(f"{c.where}: layers {unused} are not connected to the output")
        inputs = [n for n in self.operations if nodes[n].is_input]
        if inputs != [self.input_name]:
            raise Unsupported(f"{c.where}: the graph has inputs {inputs}; only one input is supported")
        self.declared_input = nodes[self.input_name].shape
        c.finish()

    def _parse_node(self, layer, node):
        where = layer.where
        if not isinstance(node, dict) or set(node) != {"args", "kwargs"}:
            raise Unsupported(f"{where}: malformed call node {node!r}")
        args, kwargs = node["args"], node["kwargs"]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise Unsupported(f"{where}: malformed call node")
        for key, value in kwargs.items():
            # Model.predict passes training=False to every layer, overriding a recorded value.
            if key == "training" and (value is None or isinstance(value, bool)):
                continue
            if key == "mask" and value is None:
                continue
            raise Unsupported(f"{where}: call argument {key}={value!r} is not supported")
        merge = isinstance(layer, _Merge)
        if len(args) != 1:
            raise Unsupported(f"{where}: called with {len(args)} positional arguments")
        if merge:
            tensors = args[0]
            if not isinstance(tensors, list) or len(tensors) < 2:
                raise Unsupported(f"{where}: a merge layer needs a list of at least two tensors")
        else:
            tensors = [args[0]]
        refs = [_tensor_ref(t, where) for t in tensors]
        return _Node(layer.name, layer, [r[0] for r in refs], merge, [r[1] for r in refs])

    def _map_graph(self):
        """Layer order of keras.src.ops.function.map_graph: by depth from the output, ties by
        first DFS visit. This is ``model.layers``' order, hence the weight file's."""
        nodes = self.nodes
        finished, in_progress = set(), set()
        post_order, index = [], {}

        def visit(name, depth=0):
            if depth > 10000:
                raise Unsupported(f"{self.where}: graph too deep")
            if name in finished:
                return
            if name in in_progress:
                raise Unsupported(f"{self.where}: the layer graph has a cycle at {name!r}")
            index.setdefault(name, len(index))
            in_progress.add(name)
            for p in nodes[name].parents:
                visit(p, depth + 1)
            finished.add(name)
            in_progress.discard(name)
            post_order.append(name)

        visit(self.output_name)
        depths = {}
        node_depth = {}
        for name in reversed(post_order):
            d = node_depth.setdefault(name, 0)
            d = max(d, depths.get(name, 0))
            depths[name] = d
            node_depth[name] = d
            for p in nodes[name].parents:
                node_depth[p] = max(d + 1, node_depth.get(p, 0))
        return sorted(depths, key=lambda n: (-depths[n], index[n]))

    def children(self):
        return [self.nodes[n].layer for n in self.operations]

    def build(self, shape):
        if not _compat(shape, self.declared_input):
            raise Unsupported(f"{self.where}: declared input {(None, *self.declared_input)} "
                              f"does not match {(None, *shape)}")
        shapes = {self.input_name: shape}
        for name in self.operations:
            node = self.nodes[name]
            if node.is_input:
                continue
            ins = [shapes[p] for p in node.parents]
            for got, rec in zip(ins, node.recorded_shapes):
                if rec is not None and not _compat(got, rec):
                    raise Unsupported(f"{node.layer.where}: recorded input shape {(None, *rec)} "
                                      f"does not match {(None, *got)}")
            shapes[name] = _build_layer(node.layer, ins if node.merge else ins[0])
        return shapes[self.output_name]

    def call(self, x):
        values = {self.input_name: x}
        remaining = {}
        for node in self.nodes.values():
            for p in node.parents:
                remaining[p] = remaining.get(p, 0) + 1
        for name in self.operations:
            node = self.nodes[name]
            if node.is_input:
                continue
            ins = [values[p] for p in node.parents]
            values[name] = node.layer.call(ins if node.merge else ins[0])
            for p in node.parents:  # free intermediate results as soon as they are consumed
                remaining[p] -= 1
                if remaining[p] == 0 and p != self.output_name:
                    del values[p]
        return values[self.output_name]


def _build_layer(layer, shape):
    bs = layer.build_shape
    if isinstance(layer, _Merge):
        shape = [tuple(s) for s in shape]
        if bs is not None and not (
            isinstance(bs, list) and len(bs) == len(shape) and all(_compat(b[1:], s) for b, s in zip(bs, shape))
        ):
            raise Unsupported(f"{layer.where}: was built for inputs {bs} but receives {shape}")
        return layer.build(shape)
    shape = tuple(shape)
    if bs is not None and not isinstance(layer, _Normalization):
        # Keras builds the layer from its build_config before the graph runs through it.
        same = _compat(bs[1:], shape) if layer.is_model else bs[1:] == shape
        if not isinstance(bs, tuple) or not same:
            raise Unsupported(f"{layer.where}: was built for input {bs} but receives {(None, *shape)}")
    if isinstance(layer, _Normalization) and bs is not None and not isinstance(bs, tuple):
        raise Unsupported(f"{layer.where}: build_config {bs} is not supported")
    return layer.build(shape)


# --------------------------------------------------------------------------------------------
# weights


def _h5_child(group, name, kind, path):
    """``group[name]`` through hard links only, as Keras' safe_get_h5_group/dataset require."""
    if name not in group:
        return None
    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise Unsupported(f"weights file: {path} is a {type(link).__name__}, which is not allowed")
    obj = group[name]
    if not isinstance(obj, kind):
        raise Unsupported(f"weights file: {path} is not a {kind.__name__}")
    return obj


def _h5_group(root, path):
    g = root
    walked = []
    for part in path.split("/"):
        walked.append(part)
        g = _h5_child(g, part, h5py.Group, "/".join(walked))
        if g is None:
            return None
    return g


def _read_vars(root, path, layer, shapes):
    """The datasets ``<path>/vars/0..n-1`` of one layer, checked against the expected shapes."""
    group = _h5_group(root, path)
    vars_group = _h5_child(group, "vars", h5py.Group, path + "/vars") if group is not None else None
    where = layer.where
    if vars_group is None:
        if shapes:
            raise Unsupported(f"{where}: weights file has no weights at {path}/vars")
        return []
    saved_name = vars_group.attrs.get("name")
    if saved_name is not None:
        if isinstance(saved_name, bytes):
            saved_name = saved_name.decode("utf-8", "replace")
        if saved_name != layer.name:
            raise Unsupported(f"{where}: weights at {path} belong to layer {saved_name!r}")
    keys = sorted(vars_group.keys())
    if keys != sorted(str(i) for i in range(len(shapes))):
        raise Unsupported(f"{where}: weights file has variables {keys} at {path}/vars, expected {len(shapes)}")
    arrays = []
    for i, shape in enumerate(shapes):
        ds = _h5_child(vars_group, str(i), h5py.Dataset, f"{path}/vars/{i}")
        if ds.external or ds.is_virtual:
            raise Unsupported(f"weights file: {path}/vars/{i} is an external or virtual dataset")
        if tuple(ds.shape) != tuple(shape):
            raise Unsupported(f"{where}: weight {i} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
        if ds.dtype.kind not in "fiu":
            raise Unsupported(f"{where}: weight {i} has dtype {ds.dtype}")
        if shape == () and ds.dtype.kind in "iu":  # Normalization's count: unused at inference
            arrays.append(None)
            continue
        if ds.dtype.kind != "f" or ds.dtype.itemsize != 4 or "dtype" in ds.attrs:
            raise Unsupported(f"{where}: weight {i} has dtype {ds.dtype} (float32 only)")
        declared = math.prod(shape) * 4
        if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_MAX_EXPANSION * ds.id.get_storage_size():
            raise Unsupported(f"{where}: weight {i} declares {declared} bytes but stores almost nothing")
        arrays.append(np.ascontiguousarray(ds[()], dtype=F32))
    return arrays


def _load_weights(model, root, prefix):
    """Keras' rule (saving_lib._save_container_state): the layers of ``model.layers`` are stored at
    ``<prefix>/layers/<snake_case(class name)>[_<n>]``, numbered per class name in that order."""
    used = {}
    for layer in model.children():
        base = _snake_case(layer.class_name)
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        path = f"{prefix}layers/{name}"
        if layer.is_model:
            _read_vars(root, path, layer, [])
            _load_weights(layer, root, path + "/")
        else:
            layer.set_weights(_read_vars(root, path, layer, layer.weight_shapes()))


def _defer_into_pool(conv, pool):
    """Conv2D (linear or relu) -> MaxPooling2D: add the bias and apply the activation after pooling.

    Exact, not an approximation: rounding ``x + b`` and relu are monotone, so the maximum of
    ``relu(x + b)`` over a window is ``relu(max(x) + b)`` bit for bit (a 'same' window always holds
    at least one real value, and the -inf padding never wins). It saves work on 4x more values.
    """
    if (
        type(conv) is _Conv2D
        and type(pool) is _MaxPooling2D
        and conv.act in (None, _ACTIVATIONS["relu"])
        and not conv.defer
    ):
        conv.defer = True
        pool.post = (conv.bias, conv.act)


def _optimize(model):
    if isinstance(model, _Sequential):
        for layer, nxt in zip(model.layers, model.layers[1:]):
            _defer_into_pool(layer, nxt)
    elif isinstance(model, _Functional):
        consumers = {}
        for node in model.nodes.values():
            for p in node.parents:
                consumers.setdefault(p, []).append(node.name)
        for name, users in consumers.items():
            if len(users) == 1 and name != model.output_name and not model.nodes[users[0]].merge:
                _defer_into_pool(model.nodes[name].layer, model.nodes[users[0]].layer)
    for child in model.children():
        if child.is_model:
            _optimize(child)


# --------------------------------------------------------------------------------------------
# public API


class NumpyModel:
    """A loaded model: ``predict(x)`` like ``keras.Model.predict`` (inference mode), in float32."""

    def __init__(self, model, input_shape, output_shape):
        self._model = model
        self.input_shape = tuple(input_shape)
        self.output_shape = tuple(output_shape)

    def predict(self, x, batch_size: int = 128) -> np.ndarray:
        x = np.asarray(x)
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
    """Read a Keras 3 ``.keras`` file; raise :class:`Unsupported` for anything not implemented exactly."""
    try:
        return _load(path)
    except Unsupported:
        raise
    except RecursionError:
        raise Unsupported("malformed model file: config nested too deeply") from None
    except (KeyError, TypeError, IndexError, ValueError, AttributeError, OSError, zipfile.BadZipFile,
            UnicodeDecodeError, OverflowError, MemoryError) as exc:
        raise Unsupported(f"malformed model file ({type(exc).__name__}: {exc})") from None


def _load(path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Unsupported(f"not a Keras 3 model archive ({type(exc).__name__}: {exc})") from None
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
    version = metadata.get("keras_version")
    if version is not None and not (isinstance(version, str) and version.startswith("3.")):
        raise Unsupported(f"saved by Keras {version!r}; only Keras 3 files are supported")
    if not isinstance(config, dict):
        raise Unsupported(f"malformed model file: config.json holds a {type(config).__name__}, not a model")
    if config.get("class_name") not in _MODEL_MODULES:
        raise Unsupported(f"model class {config.get('class_name')!r} is not supported (Sequential or Functional)")
    model = _parse_entry(config, "the model")
    if model.declared_input is None:
        raise Unsupported("the model has no declared input shape (build it with keras.Input)")
    input_shape = model.declared_input
    output_shape = _build_layer(model, input_shape)
    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except OSError as exc:
        raise Unsupported(f"weights file cannot be read ({exc})") from None
    with h5:
        _load_weights(model, h5, "")
    _optimize(model)
    return NumpyModel(model, input_shape, output_shape)
