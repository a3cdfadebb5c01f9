"""Validation helpers shared by every layer: the strict config reader, shapes, dtype policies."""

from __future__ import annotations

import math
import re

import numpy as np

F32 = np.float32
KERAS_EPSILON = 1e-7  # keras.config.epsilon() default, used by Normalization
MAX_CONFIG_BYTES = 16 * 2**20
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # the first bytes of an HDF5 (.h5) file
MAX_WEIGHTS_BYTES = 1 * 2**30


# Like Keras' own guard against HDF5 "shape bombs": a dataset whose declared size is far above
# what is stored on disk is refused.
_BOMB_FLOOR_BYTES = 64 * 2**20
_BOMB_MAX_EXPANSION = 1000


class Unsupported(Exception):
    """The file uses something this engine does not implement exactly (or is malformed).

    The message says which layer or option; the caller should fall back to real Keras.
    """


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


# Dtype policies the engine runs: the name of the policy -> the dtype layers compute in. Mixed
# policies keep float32 variables and compute in half precision: the engine rounds each layer's
# inputs, weights and outputs to that precision and computes in float32 in between.
POLICIES = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def _check_dtype_policy(value, where):
    """The compute dtype of a layer's dtype policy: float32, or float16 / bfloat16 for mixed precision."""
    name = value
    if isinstance(value, dict):
        keys = set(value) - {"module", "class_name", "config", "registered_name", "shared_object_id"}
        cfg = value.get("config")
        name = cfg.get("name") if isinstance(cfg, dict) else cfg
        if (
            keys
            or value.get("module") != "keras"
            or value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy")
            or value.get("registered_name") is not None
            or not isinstance(cfg, dict)
            or set(cfg) != {"name"}
        ):
            raise Unsupported(f"{where}: dtype policy {name!r} ({value.get('class_name')}) is not supported")
    if isinstance(name, str) and name in POLICIES:
        return POLICIES[name]
    raise Unsupported(f"{where}: dtype policy {name!r} is not supported; only {', '.join(POLICIES)}")


def round_to(x, dtype):
    """``x`` (float32) rounded to the nearest ``dtype`` value (float16 or bfloat16), kept as float32."""
    if dtype == "float32":
        return x
    if dtype == "float16":
        return np.asarray(x, dtype=np.float16).astype(F32)
    # bfloat16: the upper 16 bits of a float32, rounded to nearest even
    u = np.ascontiguousarray(x, dtype=F32).view(np.uint32)
    u = (u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) & np.uint32(0xFFFF0000)
    return u.view(F32)


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
        self.compute_dtype = "float32"

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
            self.compute_dtype = _check_dtype_policy(self.get("dtype", "float32"), self.where)
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
