"""Add and Concatenate."""

from __future__ import annotations

import numpy as np

from ..config import Unsupported
from .base import _Merge


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
