"""Max and average pooling, local and global."""

from __future__ import annotations

import numpy as np

from ..activations import _apply_inplace
from ..config import F32, Unsupported, _int_tuple
from .base import _Layer
from .convolutional import _padding, _same_padding, _valid_out


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
