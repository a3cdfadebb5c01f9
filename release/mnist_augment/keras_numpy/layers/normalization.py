"""BatchNormalization at inference."""

from __future__ import annotations

import numpy as np

from ..config import F32, Unsupported
from .base import _Layer


class _BatchNormalization(_Layer):
    class_name = "BatchNormalization"
    weights_in_compute_dtype = False  # Keras computes it in float32 under mixed precision too

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

    def var_names(self):
        return ["gamma"] * self.scale + ["beta"] * self.center + ["moving_mean", "moving_variance"]

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
