"""Preprocessing layers: random image augmentation (identity at inference), Rescaling, Normalization."""

from __future__ import annotations

import numpy as np

from ..config import F32, KERAS_EPSILON, Unsupported, _is_int, _is_number
from .base import _Identity, _Layer


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

    def var_names(self):
        return [] if self.given is not None else ["mean", "variance", "count"]

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
