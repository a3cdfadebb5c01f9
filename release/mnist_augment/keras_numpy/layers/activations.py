"""Activation layers (Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU) and the ``activation`` option of weighted layers."""

from __future__ import annotations

import numpy as np

from ..activations import _ACTIVATIONS, _elu, _relu_full, _softmax
from ..config import F32, Unsupported, _Config, _is_int, _is_number
from .base import _Layer


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

    def var_names(self):
        return ["alpha"]

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
