"""Activation functions by Keras name (keras.src.activations, TensorFlow backend), in float32."""

from __future__ import annotations

import math

import numpy as np

from .config import F32


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, F32(1) / (F32(1) + e), e / (F32(1) + e)).astype(F32, copy=False)


def _softplus(x):
    return np.logaddexp(F32(0), x).astype(F32, copy=False)


def _softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis=-1):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _elu(x, alpha=1.0):
    res = np.where(x > 0, x, np.expm1(np.minimum(x, F32(0))))
    if alpha != 1:
        res = np.where(x > 0, res, F32(alpha) * res)
    return res.astype(F32, copy=False)


_SELU_ALPHA = 1.6732632423543772848170429916717


_SELU_SCALE = 1.0507009873554804934193349852946


def _selu(x):
    neg = F32(_SELU_ALPHA) * np.expm1(np.minimum(x, F32(0)))
    return (F32(_SELU_SCALE) * np.where(x > 0, x, neg)).astype(F32, copy=False)


def _erf64(z):
    """erf in float64 to ~1e-15 (W. J. Cody's rational approximations, as in many libms)."""
    z = np.asarray(z, dtype=np.float64)
    a = np.abs(z)
    out = np.empty_like(a)
    small = a < 0.5
    if small.any():
        t = a[small] ** 2
        p = ((((1.857777061846031526730e-1 * t + 3.161123743870565596947) * t + 1.138641541510501556495e2) * t
              + 3.774852376853020208137e2) * t + 3.209377589138469472562e3)
        q = ((((t + 2.360129095234412093499e1) * t + 2.440246379344441733056e2) * t
              + 1.282616526077372275645e3) * t + 2.844236833439170622273e3)
        out[small] = a[small] * p / q
    mid = (~small) & (a < 4.0)
    if mid.any():
        y = a[mid]
        c = (2.15311535474403846343e-8, 5.64188496988670089180e-1, 8.88314979438837594118,
             6.61191906371416294775e1, 2.98635138197400131132e2, 8.81952221241769090411e2,
             1.71204761263407058314e3, 2.05107837782607146532e3, 1.23033935479799725272e3)
        d = (1.0, 1.57449261107098347253e1, 1.17693950891312499305e2, 5.37181101862009857509e2,
             1.62138957456669018874e3, 3.29079923573345962678e3, 4.36261909014324715820e3,
             3.43936767414372163696e3, 1.23033935480374942043e3)
        num = np.zeros_like(y)
        den = np.zeros_like(y)
        for k in range(9):
            num = num * y + c[k]
            den = den * y + d[k]
        out[mid] = 1.0 - np.exp(-y * y) * num / den
    big = a >= 4.0
    if big.any():
        y = a[big]
        r = 1.0 / (y * y)
        p = (1.63153871373020978498e-2, 3.05326634961232344035e-1, 3.60344899949804439429e-1,
             1.25781726111229246204e-1, 1.60837851487422766278e-2, 6.58749161529837803157e-4)
        q = (1.0, 2.56852019228982242072, 1.87295284992346725209, 5.27905102951428412248e-1,
             6.05183413124413191178e-2, 2.33520497626869185443e-3)
        num = np.zeros_like(y)
        den = np.zeros_like(y)
        for k in range(6):
            num = num * r + p[k]
            den = den * r + q[k]
        erfc = np.exp(-y * y) / y * (1.0 / math.sqrt(math.pi) - r * num / den)
        out[big] = 1.0 - erfc
    return np.copysign(out, z)


def _gelu(x):
    # keras.activations.gelu(x, approximate=False): 0.5 * x * (1 + erf(x / sqrt(2)))
    return (F32(0.5) * x * (F32(1) + _erf64(x.astype(np.float64) / math.sqrt(2.0)).astype(F32))).astype(F32)


def _hard_sigmoid(x):
    # TF backend: relu6(x + 3) / 6
    return np.clip(x + F32(3), F32(0), F32(6)) / F32(6)


_ACTIVATIONS = {
    "linear": None,
    "relu": lambda x: np.maximum(x, F32(0)),
    "relu6": lambda x: np.clip(x, F32(0), F32(6)),
    "leaky_relu": lambda x: np.where(x > 0, x, x * F32(0.2)),
    "elu": _elu,
    "selu": _selu,
    "gelu": _gelu,
    "sigmoid": _sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "silu": lambda x: x * _sigmoid(x),
    "swish": lambda x: x * _sigmoid(x),
    "softplus": _softplus,
    "softsign": lambda x: x / (F32(1) + np.abs(x)),
    "tanh": np.tanh,
    "exponential": np.exp,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "softmax": _softmax,
    "log_softmax": _log_softmax,
}


def _relu_full(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """keras.src.activations.activations.ReLU.static_call, step by step."""
    if negative_slope != 0.0:
        if max_value is None and threshold == 0:
            return np.where(x > 0, x, x * F32(negative_slope))
        if threshold != 0:
            negative_part = np.maximum(-x + F32(threshold), F32(0))
        else:
            negative_part = np.maximum(-x, F32(0))
    clip_max = max_value is not None
    if threshold != 0:
        y = np.where(x > F32(threshold), x, F32(0))
    elif max_value == 6:
        y = np.clip(x, F32(0), F32(6))
        clip_max = False
    else:
        y = np.maximum(x, F32(0))
    if clip_max:
        y = np.clip(y, F32(0), F32(max_value))
    if negative_slope != 0.0:
        y = y - F32(negative_slope) * negative_part
    return y.astype(F32, copy=False)


def _apply_inplace(fn, y):
    """Apply an activation to a freshly computed array, in place where that is exact."""
    if fn is None:
        return y
    if fn is _ACTIVATIONS["relu"]:
        return np.maximum(y, F32(0), out=y)
    if fn is _ACTIVATIONS["softmax"]:
        y -= np.max(y, axis=-1, keepdims=True)
        np.exp(y, out=y)
        y /= np.sum(y, axis=-1, keepdims=True)
        return y
    return fn(y)
