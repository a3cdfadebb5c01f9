"""Regularization layers: the identity at inference (Dropout and its relatives)."""

from __future__ import annotations

from ..config import Unsupported, _shape_list
from .base import _Identity


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
