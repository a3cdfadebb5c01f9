"""Model configs written by other Keras versions, rewritten in the spelling of Keras 3.15.

Students save models with whatever Keras they have: Keras 3.0 to the newest on any backend, Keras 2
(``tf.keras`` of TensorFlow 2.12-2.15, ``tf_keras``), and the legacy ``.h5`` format of both. Their
configs say the same things in other words. :func:`canonical` rewrites the spellings whose meaning
is known exactly, and nothing else; what it leaves alone, the strict parser judges as before.

=========================================  =================================================
written by                                  rewritten as
=========================================  =================================================
Keras 2: ``Model`` / ``Functional`` in      ``Functional`` in ``keras``
``keras.src.engine.functional`` etc.
legacy ``.h5`` entries without a module     ``keras.layers`` (or the object's own module)
Keras 2 dtype ``Policy`` objects            Keras 3 ``DTypePolicy``
``batch_input_shape`` on a first layer      an ``InputLayer`` before it (Keras 2's input_shape=)
Keras 2 BatchNormalization ``axis: [3]``    ``axis: 3``
random augmentation layers' ``value_range``  dropped: Keras 3.0-3.5 and ``tf_keras`` store options
(3.0-3.5), ``rng_type``, ``force_generator``  that only matter in training; the layers are the
                                            identity when predicting, in every version
a TensorFlow function as activation         its Keras name (``softmax_v2`` -> ``softmax``)
(``tf.nn.softmax``: builtins ``function``)
Keras 2 ``inbound_nodes`` lists             Keras 3 ``{"args", "kwargs"}`` call nodes
=========================================  =================================================
"""

from __future__ import annotations

import copy
import re

KERAS_MODEL_MODULE = "keras"
LAYERS_MODULE = "keras.layers"
MODEL_CLASSES = ("Sequential", "Functional")

# TensorFlow (tf.nn, tf.math, tf.keras.activations) function names as Keras writes them when a
# function object is given as ``activation``, and the Keras activation each one is.
TF_FUNCTIONS = {
    "softmax_v2": "softmax", "softmax": "softmax", "log_softmax_v2": "log_softmax", "log_softmax": "log_softmax",
    "relu": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu", "elu": "elu", "selu": "selu",
    "sigmoid": "sigmoid", "tanh": "tanh", "softplus": "softplus", "softsign": "softsign", "gelu": "gelu",
    "swish": "silu", "silu": "silu", "exp": "exponential", "exponential": "exponential",
    "hard_sigmoid": "hard_sigmoid", "linear": "linear", "mish": "mish",
}
_RANDOM_IMAGE_LAYERS = ("RandomRotation", "RandomTranslation", "RandomZoom", "RandomFlip", "RandomCrop",
                        "RandomContrast", "RandomBrightness")
# Keys that older versions store on random augmentation layers and that only act in training.
_TRAINING_ONLY = {"rng_type", "force_generator", "auto_vectorize"}
_VALUE_RANGE_IS_TRAINING_ONLY = ("RandomRotation", "RandomTranslation", "RandomZoom", "RandomFlip")
_OBJECT_SUFFIXES = {"_initializer": "keras.initializers", "_regularizer": "keras.regularizers",
                    "_constraint": "keras.constraints"}
_KERAS2_MODEL_MODULE = re.compile(r"^(tf_)?keras(\.src)?(\.engine|\.models)?(\.(functional|sequential|training))?$")
_KERAS2_LAYER_MODULE = re.compile(r"^(tf_)?keras(\.src)?\.layers(\.[\w.]+)?$")


def canonical(config: dict) -> dict:
    """A deep copy of a model config (``config.json`` or an ``.h5`` file's ``model_config``) in
    Keras 3.15's spelling. Malformed parts are left for the parser to report."""
    config = copy.deepcopy(config)
    if isinstance(config, dict):
        _model_entry(config)
    return config


def activation_name(value):
    """The Keras name of an ``activation`` value in any spelling (None for linear), or the value itself
    when no known function explains it (a dict or an unknown string)."""
    if value is None:
        return None
    if isinstance(value, str):
        return TF_FUNCTIONS.get(value, value)
    if isinstance(value, dict):
        cls, cfg = value.get("class_name"), value.get("config")
        if cls == "function" and isinstance(cfg, str):  # a function object: builtins.function
            return TF_FUNCTIONS.get(cfg, value)
        if cls in ("ReLU", "Softmax", "ELU", "LeakyReLU") and (cfg or {}).keys() <= {"name", "trainable", "dtype", "axis"}:
            return {"ReLU": "relu", "Softmax": "softmax", "ELU": "elu", "LeakyReLU": "leaky_relu"}[cls]
        if cls == "Activation" and isinstance(cfg, dict):
            return activation_name(cfg.get("activation"))
    return value


# ------------------------------------------------------------------------------------------------
def _model_entry(entry: dict) -> None:
    cls = entry.get("class_name")
    if cls == "Model":
        entry["class_name"] = cls = "Functional"
    module = entry.get("module")
    if module is None or (isinstance(module, str) and _KERAS2_MODEL_MODULE.match(module)):
        entry["module"] = KERAS_MODEL_MODULE
    if entry.get("registered_name") is not None and entry.get("registered_name") in ("Model", "Functional"):
        entry["registered_name"] = "Functional" if cls == "Functional" else None
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        return
    _dtype(cfg)
    layers = cfg.get("layers")
    if not isinstance(layers, list):
        return
    for layer in layers:
        if isinstance(layer, dict):
            _layer_entry(layer)
    if cls == "Sequential":
        _sequential_input(cfg, layers)
    elif cls == "Functional" and _keras2_nodes(layers):
        # Keras 2 numbers a nested model's calls from 1: its node 0 is its own Input, not serialized.
        shifted = {e.get("name") for e in layers if isinstance(e, dict) and _has_own_input(e)}
        for layer in layers:
            if isinstance(layer, dict) and isinstance(layer.get("inbound_nodes"), list):
                layer["inbound_nodes"] = [_call_node(n, shifted) for n in layer["inbound_nodes"]]
        for key in ("input_layers", "output_layers"):
            refs = cfg.get(key)
            if isinstance(refs, list):
                cfg[key] = [_shift(r, shifted) for r in refs] if all(isinstance(r, list) for r in refs) else _shift(refs, shifted)


def _layer_entry(entry: dict) -> None:
    cls = entry.get("class_name")
    if cls in MODEL_CLASSES or cls == "Model":
        _model_entry(entry)
        return
    module = entry.get("module")
    if module is None or (isinstance(module, str) and module != LAYERS_MODULE and _KERAS2_LAYER_MODULE.match(module)):
        entry["module"] = LAYERS_MODULE
    cfg = entry.get("config")
    if not isinstance(cfg, dict):
        return
    _dtype(cfg)
    for key, value in list(cfg.items()):
        if key == "activation":
            cfg[key] = _activation(value)
        elif isinstance(value, dict) and "class_name" in value and "module" not in value:
            for suffix, mod in _OBJECT_SUFFIXES.items():
                if key.endswith(suffix) or (key == "activity_regularizer" and suffix == "_regularizer"):
                    value["module"] = mod
                    value.setdefault("registered_name", None)
    if cls == "BatchNormalization" and isinstance(cfg.get("axis"), list) and len(cfg["axis"]) == 1:
        cfg["axis"] = cfg["axis"][0]
    if cls in _RANDOM_IMAGE_LAYERS:
        for key in _TRAINING_ONLY & set(cfg):
            del cfg[key]
        if cls in _VALUE_RANGE_IS_TRAINING_ONLY:
            cfg.pop("value_range", None)


def _dtype(cfg: dict) -> None:
    """Keras 2's ``Policy`` object (``keras.mixed_precision``) as Keras 3's ``DTypePolicy``."""
    value = cfg.get("dtype")
    if isinstance(value, dict) and value.get("class_name") == "Policy":
        name = (value.get("config") or {}).get("name") if isinstance(value.get("config"), dict) else None
        module = value.get("module")
        if isinstance(name, str) and (module is None or "mixed_precision" in str(module)):
            cfg["dtype"] = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name},
                            "registered_name": None}


def _activation(value):
    """A serialized activation in the spelling the engine reads: a Keras name where one is known."""
    if isinstance(value, str):
        return TF_FUNCTIONS.get(value, value)
    if isinstance(value, dict):
        name = activation_name(value)
        if isinstance(name, str) and value.get("class_name") == "function":
            return name
        if "module" not in value and "class_name" in value:  # a legacy .h5 activation layer object
            value["module"] = LAYERS_MODULE
            value.setdefault("registered_name", None)
    return value


def _sequential_input(cfg: dict, layers: list) -> None:
    """Keras 2's ``input_shape=`` on the first layer (saved as its ``batch_input_shape``) as an InputLayer."""
    first = next((i for i, e in enumerate(layers) if isinstance(e, dict)), None)
    if first is None:
        return
    for entry in layers:
        lcfg = entry.get("config") if isinstance(entry, dict) else None
        if isinstance(lcfg, dict) and entry.get("class_name") != "InputLayer" and "batch_input_shape" in lcfg:
            shape = lcfg.pop("batch_input_shape")
            lcfg.pop("batch_size", None)
            if entry is layers[first] and isinstance(shape, list):
                names = {e.get("config", {}).get("name") for e in layers if isinstance(e, dict) and isinstance(e.get("config"), dict)}
                name = next(n for n in ("input_layer", *(f"input_layer_{i}" for i in range(1, 100))) if n not in names)
                layers.insert(0, {"module": LAYERS_MODULE, "class_name": "InputLayer",
                                  "config": {"batch_shape": shape, "dtype": "float32", "sparse": False, "name": name},
                                  "registered_name": None})
                return


def _is_keras2_node(node) -> bool:
    return isinstance(node, list) and bool(node) and all(isinstance(t, list) and len(t) in (3, 4) for t in node)


def _keras2_nodes(layers: list) -> bool:
    """Whether a Functional config's call nodes are Keras 2 lists (not Keras 3 ``{"args", "kwargs"}``)."""
    return any(isinstance(e, dict) and isinstance(e.get("inbound_nodes"), list)
               and any(_is_keras2_node(n) for n in e["inbound_nodes"]) for e in layers)


def _has_own_input(entry: dict) -> bool:
    """A nested model that was built with its own Input (Keras 2 skips its first node when saving)."""
    if entry.get("class_name") == "Functional":
        return True
    inner = (entry.get("config") or {}).get("layers") if isinstance(entry.get("config"), dict) else None
    return entry.get("class_name") == "Sequential" and isinstance(inner, list) and bool(inner) and \
        isinstance(inner[0], dict) and inner[0].get("class_name") == "InputLayer"


def _shift(ref, shifted: set):
    """``[layer, node_index, tensor_index]`` with a nested model's Keras 2 node index renumbered from 0."""
    if isinstance(ref, list) and len(ref) >= 3 and ref[0] in shifted and isinstance(ref[1], int) and ref[1] >= 1:
        return [ref[0], ref[1] - 1, *ref[2:]]
    return ref


def _call_node(node, shifted: set = frozenset()):
    """A Keras 2 call node, ``[["layer", node_index, tensor_index, {kwargs}], ...]``, as Keras 3 writes it."""
    if not _is_keras2_node(node):
        return node
    kwargs = {}
    tensors = []
    for t in node:
        if len(t) == 4 and isinstance(t[3], dict):
            kwargs.update(t[3])
        tensors.append({"class_name": "__keras_tensor__",
                        "config": {"shape": None, "dtype": None, "keras_history": _shift(list(t[:3]), shifted)}})
    return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs}
