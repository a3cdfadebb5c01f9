"""Reading a model's weights from ``model.weights.h5`` by Keras' naming rule."""

from __future__ import annotations

import math

import h5py
import numpy as np

from .config import F32, Unsupported, _BOMB_FLOOR_BYTES, _BOMB_MAX_EXPANSION, _snake_case


def _h5_child(group, name, kind, path):
    """``group[name]`` through hard links only, as Keras' safe_get_h5_group/dataset require."""
    if name not in group:
        return None
    link = group.get(name, getlink=True)
    if not isinstance(link, h5py.HardLink):
        raise Unsupported(f"weights file: {path} is a {type(link).__name__}, which is not allowed")
    obj = group[name]
    if not isinstance(obj, kind):
        raise Unsupported(f"weights file: {path} is not a {kind.__name__}")
    return obj


def _h5_group(root, path):
    g = root
    walked = []
    for part in path.split("/"):
        walked.append(part)
        g = _h5_child(g, part, h5py.Group, "/".join(walked))
        if g is None:
            return None
    return g


def _read_vars(root, path, layer, shapes):
    """The datasets ``<path>/vars/0..n-1`` of one layer, checked against the expected shapes."""
    group = _h5_group(root, path)
    vars_group = _h5_child(group, "vars", h5py.Group, path + "/vars") if group is not None else None
    where = layer.where
    if vars_group is None:
        if shapes:
            raise Unsupported(f"{where}: weights file has no weights at {path}/vars")
        return []
    saved_name = vars_group.attrs.get("name")
    if saved_name is not None:
        if isinstance(saved_name, bytes):
            saved_name = saved_name.decode("utf-8", "replace")
        if saved_name != layer.name:
            raise Unsupported(f"{where}: weights at {path} belong to layer {saved_name!r}")
    keys = sorted(vars_group.keys())
    if keys != sorted(str(i) for i in range(len(shapes))):
        raise Unsupported(f"{where}: weights file has variables {keys} at {path}/vars, expected {len(shapes)}")
    arrays = []
    for i, shape in enumerate(shapes):
        ds = _h5_child(vars_group, str(i), h5py.Dataset, f"{path}/vars/{i}")
        if ds.external or ds.is_virtual:
            raise Unsupported(f"weights file: {path}/vars/{i} is an external or virtual dataset")
        if tuple(ds.shape) != tuple(shape):
            raise Unsupported(f"{where}: weight {i} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
        if ds.dtype.kind not in "fiu":
            raise Unsupported(f"{where}: weight {i} has dtype {ds.dtype}")
        if shape == () and ds.dtype.kind in "iu":  # Normalization's count: unused at inference
            arrays.append(None)
            continue
        if ds.dtype.kind != "f" or ds.dtype.itemsize != 4 or "dtype" in ds.attrs:
            raise Unsupported(f"{where}: weight {i} has dtype {ds.dtype} (float32 only)")
        declared = math.prod(shape) * 4
        if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_MAX_EXPANSION * ds.id.get_storage_size():
            raise Unsupported(f"{where}: weight {i} declares {declared} bytes but stores almost nothing")
        arrays.append(np.ascontiguousarray(ds[()], dtype=F32))
    return arrays


def _load_weights(model, root, prefix):
    """Keras' rule (saving_lib._save_container_state): the layers of ``model.layers`` are stored at
    ``<prefix>/layers/<snake_case(class name)>[_<n>]``, numbered per class name in that order."""
    used = {}
    for layer in model.children():
        base = _snake_case(layer.class_name)
        if base in used:
            used[base] += 1
            name = f"{base}_{used[base]}"
        else:
            used[base] = 0
            name = base
        path = f"{prefix}layers/{name}"
        if layer.is_model:
            _read_vars(root, path, layer, [])
            _load_weights(layer, root, path + "/")
        else:
            layer.set_weights(_read_vars(root, path, layer, layer.weight_shapes()))
