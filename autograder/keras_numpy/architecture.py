"""Read a saved Keras model's architecture without deserializing it.

A ``.keras`` file is a zip archive with ``config.json`` (the architecture), ``metadata.json`` and
``model.weights.h5``; a legacy ``.h5`` file holds the same config as its ``model_config`` attribute
and the weights under ``model_weights``. The grader reads the JSON (rewritten in Keras 3's spelling
by :mod:`.compat`) and the HDF5 dataset *shapes* only: no student class is imported, no layer is
built, no Python code from the file runs. This is what the architecture checks look at; predictions
are made by a sandboxed child with the engine of this package.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .compat import activation_name, canonical
from .config import HDF5_MAGIC
from .layers import _REFUSED

MODEL_CLASSES = {"Sequential", "Functional", "Model"}
# Layers that only apply a function to each value: a network spelled Dense(256) + Activation("relu")
# is the network Dense(256, relu).
ACTIVATION_LAYERS = {"Activation": None, "ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "PReLU": "prelu",
                     "Softmax": "softmax"}


class ModelFileError(ValueError):
    """The file is not a Keras model the grader will read; the message says why, for the student."""


@dataclass(frozen=True)
class Layer:
    """One layer as its config describes it."""

    class_name: str
    name: str
    config: dict
    module: str = "keras.layers"

    @property
    def activation(self) -> str | None:
        """The activation's Keras name (None or "linear" for none); for an activation layer, the function
        it applies; for a value no known framework function explains, a description naming it."""
        if self.class_name in ACTIVATION_LAYERS and self.class_name != "Activation":
            return ACTIVATION_LAYERS[self.class_name]
        name = activation_name(self.config.get("activation"))
        if name is None or isinstance(name, str) and name.isidentifier():
            return name
        if isinstance(name, dict) and name.get("class_name") == "function" and isinstance(name.get("config"), str):
            what = f"function {name['config'][:60]!r}"  # a Python function saved by reference
        else:
            what = json.dumps(name)[:80]
        return f"unrecognised activation {what} in layer {self.name!r}"

    @property
    def is_activation(self) -> bool:
        """A layer that only applies an activation function (Activation, ReLU, Softmax, ...)."""
        return self.class_name in ACTIVATION_LAYERS

    def describe(self) -> str:
        if self.class_name == "Dense":
            return f"Dense({self.config.get('units')}, {self.activation})"
        if self.class_name in ("Conv2D", "Conv1D"):
            return f"{self.class_name}({self.config.get('filters')}, {self.activation})"
        if self.class_name == "Activation":
            return f"Activation({self.activation})"
        return self.class_name


@dataclass(frozen=True)
class ModelInfo:
    """What the grader knows about a model from its config and weight shapes."""

    path: Path
    class_name: str
    layers: tuple[Layer, ...]  # flattened in order, nested models expanded
    input_shape: tuple[int | None, ...] | None  # without the batch dimension
    weight_shapes: dict[str, tuple[int, ...]] = field(repr=False)
    keras_version: str | None = None
    format: str = "keras"  # "keras" (a .keras zip) or "h5" (the legacy HDF5 format)

    @property
    def n_params(self) -> int:
        """Number of weights (trainable and not), as ``model.count_params()`` reports."""
        total = 0
        for shape in self.weight_shapes.values():
            n = 1
            for d in shape:
                n *= d
            total += n
        return total

    @property
    def output_layer(self) -> Layer | None:
        return self.layers[-1] if self.layers else None

    def layer_types(self) -> list[str]:
        return [layer.class_name for layer in self.layers]

    def effective_activation(self, index: int) -> str | None:
        """The activation that follows layer ``index`` as a network: its own, or, when it has none
        (linear), that of the activation layer right after it (Dropout and BatchNormalization between
        them are skipped; a weighted layer ends the search)."""
        own = self.layers[index].activation
        if own not in (None, "linear"):
            return own
        for layer in self.layers[index + 1:]:
            if layer.is_activation:
                return layer.activation
            if layer.class_name not in ("Dropout", "BatchNormalization", "GaussianNoise", "AlphaDropout",
                                        "GaussianDropout", "SpatialDropout2D"):
                break
        return own

    def summary(self) -> str:
        return " -> ".join(layer.describe() for layer in self.layers if layer.class_name != "InputLayer")


def _walk_code_layers(obj, found: list[str]) -> None:
    if isinstance(obj, dict):
        if obj.get("class_name") in _REFUSED:
            found.append(obj["class_name"])
        for value in obj.values():
            _walk_code_layers(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _walk_code_layers(value, found)


def _flatten_layers(model_config: dict) -> list[Layer]:
    """Layers of a Sequential or Functional config in order, nested models expanded."""
    layers: list[Layer] = []
    for entry in model_config.get("config", {}).get("layers", []):
        cls = entry.get("class_name", "?")
        if cls in MODEL_CLASSES:
            layers.extend(_flatten_layers(entry))
            continue
        cfg = entry.get("config", {}) or {}
        layers.append(Layer(cls, str(cfg.get("name", "")), cfg, str(entry.get("module", ""))))
    if model_config.get("class_name") in ("Functional", "Model"):
        # Put the declared output layer last, whatever order the config lists layers in.
        outputs = model_config.get("config", {}).get("output_layers") or []
        if outputs and isinstance(outputs[0], list) and outputs[0]:
            out_name = outputs[0][0]
            for i, layer in enumerate(layers):
                if layer.name == out_name and i != len(layers) - 1:
                    layers.append(layers.pop(i))
                    break
    return layers


def _check_structure(model_config, where: str = "the model") -> None:
    """Raise ValueError, naming the place, unless the config has the shape Keras writes."""
    def expect(value, kinds, what):
        if not isinstance(value, kinds):
            names = " or ".join("null" if k is type(None) else {"dict": "an object", "list": "a list",
                                "str": "a string"}.get(k.__name__, k.__name__) for k in kinds)
            raise ValueError(f"{what} is {type(value).__name__ if value is not None else 'null'}, expected {names}")

    expect(model_config, (dict,), where)
    cfg = model_config.get("config", {})
    expect(cfg, (dict,), f"{where}: config")
    layers = cfg.get("layers", [])
    expect(layers, (list,), f"{where}: config.layers")
    for i, entry in enumerate(layers):
        expect(entry, (dict,), f"{where}: layer {i}")
        expect(entry.get("class_name", "?"), (str,), f"{where}: layer {i} class_name")
        for key in ("config", "build_config"):
            expect(entry.get(key), (dict, type(None)), f"{where}: layer {i} {key}")
        expect(entry.get("module"), (str, type(None)), f"{where}: layer {i} module")
        if entry.get("class_name") in MODEL_CLASSES:
            _check_structure(entry, f"{where}: layer {i}")
        shape = (entry.get("config") or {}).get("batch_shape")
        if shape is not None:
            expect(shape, (list,), f"{where}: layer {i} batch_shape")
    expect(model_config.get("build_config", {}), (dict, type(None)), f"{where}: build_config")
    expect(cfg.get("output_layers"), (list, type(None)), f"{where}: config.output_layers")


def _input_shape(model_config: dict) -> tuple | None:
    cfg = model_config.get("config", {})
    for entry in cfg.get("layers", []):
        if entry.get("class_name") == "InputLayer":
            shape = entry.get("config", {}).get("batch_shape") or entry.get("config", {}).get("batch_input_shape")
            if shape:
                return tuple(shape[1:])
        if entry.get("class_name") in MODEL_CLASSES:
            nested = _input_shape(entry)
            if nested:
                return nested
    build = model_config.get("build_config", {}).get("input_shape")
    if build:
        return tuple(build[1:])
    for entry in cfg.get("layers", []):
        shape = (entry.get("build_config") or {}).get("input_shape")
        if shape:
            return tuple(shape[1:])
    return None


def _weight_shapes(h5, group: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the network's variables under ``group`` of an HDF5 file (bytes or a path).

    Only the layers' own variables count, as ``model.count_params()`` counts them: a model's group holds
    ``layers/`` and ``vars/`` besides what training left beside them (``optimizer/``, metrics), and a
    nested model keeps its own optimizer state (Keras 3 writes ``layers/<inner model>/optimizer/vars``).
    Inside a layer that is not a model every variable is the layer's (sub-layers included).
    """
    import h5py  # reads dataset headers; no code in the file is run

    shapes: dict[str, tuple[int, ...]] = {}

    def visit(node, path: str) -> None:
        names = list(node.keys())
        # A model's group (it has a layers/ group; the file's root group of layers is one too): only its
        # layers and its own variables.
        model_group = isinstance(node.get("layers"), h5py.Group)
        for name in names:
            if model_group and path != group and name not in ("layers", "vars"):
                continue
            child = node.get(name)
            if isinstance(child, h5py.Dataset):
                shapes[f"{path}/{name}"] = tuple(int(d) for d in child.shape)
            elif isinstance(child, h5py.Group):
                visit(child, f"{path}/{name}")

    with h5py.File(io.BytesIO(h5) if isinstance(h5, bytes) else h5, "r") as f:
        if group not in f:
            return shapes
        visit(f[group], group)
    return shapes


# What a folder written by model.export (or tf.saved_model.save) is, for the student.
SAVED_MODEL_FOLDER = ("is a TensorFlow SavedModel folder (model.export or tf.saved_model.save), which the grader "
                      "does not load")


def check_file(path: str | Path, max_mb: float) -> Path:
    """``path`` as a Path if it is a regular file within the size limit; else ModelFileError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path.name} not found")
    if path.is_dir() and not path.is_symlink() and (path / "saved_model.pb").exists():
        raise ModelFileError(f"{path.name} {SAVED_MODEL_FOLDER}: save the model with model.save(\"{path.name}\")")
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{path.name} is not a regular file")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise ModelFileError(f"{path.name} is {size_mb:.0f} MB; the limit is {max_mb:.0f} MB")
    return path


def inspect_model(path: str | Path, *, max_mb: float = 100) -> ModelInfo:
    """Read ``path`` as a ``.keras`` archive or a legacy ``.h5`` model file; raise ModelFileError with a
    student-facing reason."""
    path = check_file(path, max_mb)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic == HDF5_MAGIC:
        config, metadata, shapes = _read_h5(path)
        fmt = "h5"
    else:
        config, metadata, shapes = _read_zip(path, max_mb)
        fmt = "keras"
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        got = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(f"{path.name} holds a {got}, not a Keras model (Sequential or Functional)")
    try:
        _check_structure(config)
        config = canonical(config)
        _check_structure(config)
    except (ValueError, RecursionError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{path.name} has a malformed model config ({'model_config' if fmt == 'h5' else 'config.json'}): "
                             f"{str(exc)[:300]}; save the model again with model.save(...)") from None
    code_layers: list[str] = []
    _walk_code_layers(config, code_layers)
    if code_layers:
        raise ModelFileError(
            f"{path.name} contains a {code_layers[0]} layer, which {_REFUSED[code_layers[0]]}; the grader does "
            "not load such models. Use built-in Keras layers only."
        )
    if not shapes:
        raise ModelFileError(f"{path.name} has no weights; build and train the model before saving it")
    try:
        return ModelInfo(
            path=path,
            class_name=config["class_name"],
            layers=tuple(_flatten_layers(config)),
            input_shape=_input_shape(config),
            weight_shapes=shapes,
            keras_version=metadata.get("keras_version") if isinstance(metadata, dict) else None,
            format=fmt,
        )
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # values of unexpected types
        raise ModelFileError(f"{path.name} has a malformed model config (config.json): "
                             f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _read_zip(path: Path, max_mb: float):
    """config, metadata and weight shapes of a ``.keras`` archive."""
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path.name} is not a Keras model archive (expected a .keras zip file)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            unpacked = sum(i.file_size for i in zf.infolist())
            if unpacked > 4 * max_mb * 2**20:
                raise ModelFileError(f"{path.name} unpacks to {unpacked / 2**20:.0f} MB, too large")
            if "config.json" not in names:
                raise ModelFileError(f"{path.name} has no config.json; save it with model.save(...)")
            config = json.loads(zf.read("config.json"))
            metadata = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
            h5 = zf.read("model.weights.h5") if "model.weights.h5" in names else b""
    except ModelFileError:
        raise
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path.name} is damaged: a JSON file in it (config.json or metadata.json) is not "
                             f"valid JSON ({exc})") from None
    except (zipfile.BadZipFile, UnicodeDecodeError, OSError) as exc:
        raise ModelFileError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from None
    try:
        shapes = _weight_shapes(h5, "layers") if h5 else {}
    except Exception as exc:
        raise ModelFileError(f"{path.name}: its weights file cannot be read ({type(exc).__name__})") from None
    return config, metadata, shapes


def _read_h5(path: Path):
    """config, metadata (the Keras version) and weight shapes of a legacy ``.h5`` model file."""
    import h5py

    from . import Unsupported, legacy_config

    try:
        with h5py.File(path, "r") as f:
            try:
                config, version = legacy_config(f)
            except Unsupported as exc:
                raise ModelFileError(f"{path.name}: {exc}; save the whole model with model.save(\"{path.stem}.keras\")") from None
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path.name} is a damaged HDF5 (.h5) file ({type(exc).__name__})") from None
    try:
        shapes = _weight_shapes(path, "model_weights")
    except Exception as exc:
        raise ModelFileError(f"{path.name}: its weights cannot be read ({type(exc).__name__})") from None
    return config, {"keras_version": version}, shapes


def saved_by(path) -> str:
    """Which Keras (and backend) saved a model file, as its metadata says, for messages: e.g.
    "Keras 3.16.0 (jax)", or "an unknown Keras version" when the file does not say."""
    path = Path(path)
    version = backend = None
    try:
        with open(path, "rb") as f:
            magic = f.read(8)
        if magic == HDF5_MAGIC:
            import h5py

            with h5py.File(path, "r") as f:
                version, backend = f.attrs.get("keras_version"), f.attrs.get("backend")
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                if "metadata.json" in zf.namelist():
                    meta = json.loads(zf.read("metadata.json")[:65536])
                    version = meta.get("keras_version") if isinstance(meta, dict) else None
        else:
            return "no Keras (it is neither a .keras archive nor an HDF5 model file)"
    except Exception:
        return "an unknown Keras version (the file's metadata cannot be read)"
    version = version.decode() if isinstance(version, bytes) else version
    backend = backend.decode() if isinstance(backend, bytes) else backend
    if not isinstance(version, str):
        return "an unknown Keras version"
    return f"Keras {version[:20]}" + (f" ({backend[:20]})" if isinstance(backend, str) else "")


def h5_twin(file: str) -> str:
    """The legacy-format name of a ``.keras`` model file: ``mnist_dense.keras`` -> ``mnist_dense.h5``."""
    return str(Path(file).with_suffix(".h5"))
