"""The base classes every layer derives from."""

from __future__ import annotations

from ..config import _Config, round_to


class _Layer:
    """One Keras layer: validates its config, infers shapes, holds weights, runs in NumPy."""

    class_name = ""
    is_model = False
    compute_dtype = "float32"  # float16 / bfloat16 under a mixed-precision policy
    weights_in_compute_dtype = True  # False: computes in float32 with float32 weights (BatchNormalization)

    def __init__(self, c: _Config):
        self.name = c.name
        self.where = c.where
        self.build_shape = None  # the layer's build_config input shape, if any

    def weight_shapes(self):
        """Expected shapes of the layer's saved variables, in Keras' save order."""
        return []

    def var_names(self):
        """The variables' names, in the order of :meth:`weight_shapes` (how ``.h5`` files name them)."""
        return []

    def set_weights(self, arrays):
        pass

    def build(self, shape):
        """Output shape (no batch dimension) for an input of ``shape``; Unsupported if invalid."""
        return shape

    def call(self, x):
        raise NotImplementedError


def add_bias(layer, y):
    """``y + bias`` in place; in a mixed-precision layer rounded as Keras computes it. float16: the
    product, then the sum, each rounded (every backend does so). bfloat16: the sum of the float32
    product and the bias rounded once, as TensorFlow's fused kernels do (JAX and PyTorch round the
    product first: a few near-ties in 10,000 fall the other way, docs/model_files.md)."""
    if layer.compute_dtype == "float32":
        y += layer.bias
        return y
    if layer.compute_dtype == "float16":
        y = round_to(y, "float16")
    y += layer.bias
    return round_to(y, layer.compute_dtype)


class _Identity(_Layer):
    """Layers that return their input unchanged when ``training`` is False."""

    def call(self, x):
        return x


class _Merge(_Layer):
    n_inputs = "many"
