"""The base classes every layer derives from."""

from __future__ import annotations

from ..config import _Config


class _Layer:
    """One Keras layer: validates its config, infers shapes, holds weights, runs in NumPy."""

    class_name = ""
    is_model = False

    def __init__(self, c: _Config):
        self.name = c.name
        self.where = c.where
        self.build_shape = None  # the layer's build_config input shape, if any

    def weight_shapes(self):
        """Expected shapes of the layer's saved variables, in Keras' save order."""
        return []

    def set_weights(self, arrays):
        pass

    def build(self, shape):
        """Output shape (no batch dimension) for an input of ``shape``; Unsupported if invalid."""
        return shape

    def call(self, x):
        raise NotImplementedError


class _Identity(_Layer):
    """Layers that return their input unchanged when ``training`` is False."""

    def call(self, x):
        return x


class _Merge(_Layer):
    n_inputs = "many"
