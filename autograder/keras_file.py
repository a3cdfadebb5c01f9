"""Read a saved Keras model's architecture without deserializing it.

A ``.keras`` file is a zip archive with ``config.json`` (the architecture), ``metadata.json`` and
``model.weights.h5``. The grader reads the JSON and the HDF5 dataset *shapes* only: no student
class is imported, no layer is built, no Python code from the file runs. This is what the
architecture checks look at; predictions are made by a sandboxed child (see ``sandbox.py``).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MODEL_CLASSES = {"Sequential", "Functional", "Model"}
# Layers whose config can carry Python code (bytecode or a function reference).
CODE_LAYERS = {"Lambda", "TFSMLayer"}


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
        act = self.config.get("activation")
        if isinstance(act, dict):  # a serialized activation object
            return act.get("config", {}).get("name") or act.get("class_name")
        return act

    def describe(self) -> str:
        if self.class_name == "Dense":
            return f"Dense({self.config.get('units')}, {self.activation})"
        if self.class_name in ("Conv2D", "Conv1D"):
            return f"{self.class_name}({self.config.get('filters')}, {self.activation})"
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

    def summary(self) -> str:
        return " -> ".join(layer.describe() for layer in self.layers if layer.class_name != "InputLayer")


def _walk_code_layers(obj, found: list[str]) -> None:
    if isinstance(obj, dict):
        if obj.get("class_name") in CODE_LAYERS:
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


def _weight_shapes(h5_bytes: bytes) -> dict[str, tuple[int, ...]]:
    import h5py  # reads dataset headers; no code in the file is run

    shapes: dict[str, tuple[int, ...]] = {}
    with h5py.File(io.BytesIO(h5_bytes), "r") as f:
        if "layers" not in f:
            return shapes

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                shapes[f"layers/{name}"] = tuple(int(d) for d in obj.shape)

        f["layers"].visititems(visit)
    return shapes


def check_file(path: str | Path, max_mb: float) -> Path:
    """``path`` as a Path if it is a regular file within the size limit; else ModelFileError."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model file {path.name} not found")
    if path.is_symlink() or not path.is_file():
        raise ModelFileError(f"{path.name} is not a regular file")
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise ModelFileError(f"{path.name} is {size_mb:.0f} MB; the limit is {max_mb:.0f} MB")
    return path


def inspect_model(path: str | Path, *, max_mb: float = 100) -> ModelInfo:
    """Read ``path`` as a ``.keras`` archive; raise ModelFileError with a student-facing reason."""
    path = check_file(path, max_mb)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"\x89HDF"):
        raise ModelFileError(
            f"{path.name} is a legacy HDF5 (.h5) model; the grader only reads the Keras 3 format: "
            f"save with model.save('{path.stem}.keras')"
        )
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path.name} is not a Keras 3 model archive (expected a .keras zip file)")
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
    if not isinstance(config, dict) or config.get("class_name") not in MODEL_CLASSES:
        got = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ModelFileError(f"{path.name} holds a {got}, not a Keras model (Sequential or Functional)")
    try:
        _check_structure(config)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path.name} has a malformed model config (config.json): {str(exc)[:300]}; save the "
                             "model again with model.save(...)") from None
    code_layers: list[str] = []
    _walk_code_layers(config, code_layers)
    if code_layers:
        raise ModelFileError(
            f"{path.name} contains a {code_layers[0]} layer, which carries Python code; the grader does "
            "not load such models. Use built-in Keras layers only."
        )
    try:
        shapes = _weight_shapes(h5) if h5 else {}
    except Exception as exc:
        raise ModelFileError(f"{path.name}: its weights file cannot be read ({type(exc).__name__})") from None
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
        )
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:  # values of unexpected types
        raise ModelFileError(f"{path.name} has a malformed model config (config.json): "
                             f"{type(exc).__name__}: {str(exc)[:200]}") from None
