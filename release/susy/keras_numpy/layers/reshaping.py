"""Flatten, Reshape, ZeroPadding2D."""

from __future__ import annotations

import math

import numpy as np

from ..config import Unsupported, _int_tuple, _is_int
from .base import _Layer


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
        (top, bottom), (left, right) = self.pad
        return (None if h is None else h + top + bottom, None if w is None else w + left + right, ch)

    def call(self, x):
        return np.pad(x, ((0, 0), self.pad[0], self.pad[1], (0, 0)))
