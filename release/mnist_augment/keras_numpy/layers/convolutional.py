"""Conv2D (im2col and one matmul per batch) and TensorFlow's padding rules."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..activations import _apply_inplace
from ..config import Unsupported, _int_tuple, _is_int
from .activations import _parse_activation
from .base import _Layer, add_bias


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
        kh, kw = self.kernel_size
        self.work_floats = (out[0] or 1) * (out[1] or 1) * kh * kw * self.n_in  # the im2col buffer
        return (out[0], out[1], self.filters)

    def weight_shapes(self):
        return [self.kernel_size + (self.n_in, self.filters)] + ([(self.filters,)] if self.use_bias else [])

    def var_names(self):
        return ["kernel"] + (["bias"] if self.use_bias else [])

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
                y = add_bias(self, y)
            y = _apply_inplace(self.act, y)
        return y.reshape(b, ho, wo, self.filters)
