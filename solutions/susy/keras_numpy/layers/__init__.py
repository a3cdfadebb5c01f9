"""The layers this engine implements, by Keras class name (one module per Keras layer family)."""

from __future__ import annotations

from .activations import _ELU, _Activation, _LeakyReLU, _PReLU, _ReLU, _Softmax
from .convolutional import _Conv2D
from .core import _Dense
from .merging import _Add, _Concatenate
from .normalization import _BatchNormalization
from .pooling import _AveragePooling2D, _GlobalAveragePooling2D, _GlobalMaxPooling2D, _MaxPooling2D
from .preprocessing import (
    _Normalization,
    _RandomBrightness,
    _RandomContrast,
    _RandomFlip,
    _RandomRotation,
    _RandomTranslation,
    _RandomZoom,
    _Rescaling,
)
from .regularization import (
    _ActivityRegularization,
    _AlphaDropout,
    _Dropout,
    _GaussianDropout,
    _GaussianNoise,
    _SpatialDropout2D,
)
from .reshaping import _Flatten, _Reshape, _ZeroPadding2D

_LAYERS = {
    cls.class_name: cls
    for cls in (
        _Dense, _Conv2D, _MaxPooling2D, _AveragePooling2D, _GlobalAveragePooling2D, _GlobalMaxPooling2D,
        _Flatten, _Reshape, _ZeroPadding2D, _Dropout, _SpatialDropout2D, _GaussianNoise, _GaussianDropout,
        _AlphaDropout, _ActivityRegularization, _RandomRotation, _RandomTranslation, _RandomZoom,
        _RandomFlip, _RandomContrast, _RandomBrightness, _Rescaling, _Normalization,
        _BatchNormalization, _Activation, _ReLU, _LeakyReLU, _ELU, _Softmax, _PReLU, _Add, _Concatenate,
    )
}


# Keras layers whose presence is reported with a specific reason.
_REFUSED = {
    "Lambda": "carries Python code",
    "TFSMLayer": "wraps a TensorFlow SavedModel",
}
