"""Dense."""

from __future__ import annotations

from ..activations import _apply_inplace
from ..config import Unsupported, _is_int
from .activations import _parse_activation
from .base import _Layer, add_bias


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

    def var_names(self):
        return ["kernel"] + (["bias"] if self.use_bias else [])

    def set_weights(self, arrays):
        self.kernel = arrays[0]
        self.bias = arrays[1] if self.use_bias else None

    def call(self, x):
        if x.ndim == 2:
            y = x @ self.kernel
        else:
            y = (x.reshape(-1, x.shape[-1]) @ self.kernel).reshape(x.shape[:-1] + (self.units,))
        if self.bias is not None:
            y = add_bias(self, y)
        return _apply_inplace(self.act, y)
