"""Reading a model's weights from ``model.weights.h5`` by Keras' naming rule."""

from __future__ import annotations

import math

import h5py
import numpy as np

from .config import _BOMB_FLOOR_BYTES, _BOMB_MAX_EXPANSION, F32, Unsupported, _snake_case, round_to


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
    return [_read_dataset(_h5_child(vars_group, str(i), h5py.Dataset, f"{path}/vars/{i}"), shape, where,
                          f"weight {i}", f"{path}/vars/{i}") for i, shape in enumerate(shapes)]


def _read_dataset(ds, shape, where, label, path, legacy=False):
    """One weight array, checked: a plain float32 dataset of ``shape`` (None for an integer scalar,
    Normalization's count, unused when predicting)."""
    if ds.external or ds.is_virtual:
        raise Unsupported(f"weights file: {path} is an external or virtual dataset")
    if tuple(ds.shape) != tuple(shape):
        raise Unsupported(f"{where}: {label} has shape {tuple(ds.shape)}, expected {tuple(shape)}")
    if ds.dtype.kind not in "fiu":
        raise Unsupported(f"{where}: {label} has dtype {ds.dtype}")
    if shape == () and ds.dtype.kind in "iu":  # Normalization's count: unused at inference
        return None
    if ds.dtype.kind != "f" or ds.dtype.itemsize != 4 or ("dtype" in ds.attrs and not legacy):
        raise Unsupported(f"{where}: {label} has dtype {ds.dtype} (float32 only)")
    declared = math.prod(shape) * 4
    if declared > _BOMB_FLOOR_BYTES and declared > _BOMB_MAX_EXPANSION * ds.id.get_storage_size():
        raise Unsupported(f"{where}: {label} declares {declared} bytes but stores almost nothing")
    return np.ascontiguousarray(ds[()], dtype=F32)


def _set_weights(layer, arrays):
    """Give ``layer`` its arrays, rounded to its compute dtype where Keras computes with them in it (the arrays as
    saved are kept as ``loaded_weights``: :meth:`autograder.keras_numpy.NumpyModel.parameters`)."""
    layer.loaded_weights = [np.array(a, dtype=np.float32) for a in arrays if a is not None]
    if layer.compute_dtype != "float32" and layer.weights_in_compute_dtype:
        arrays = [None if a is None else round_to(a, layer.compute_dtype) for a in arrays]
    layer.set_weights(arrays)


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
            _set_weights(layer, _read_vars(root, path, layer, layer.weight_shapes()))


# ------------------------------------------------------------------------------------------------
# the legacy HDF5 format (model.save("model.h5"), Keras 2 and Keras 3)
def _names(group, attr):
    """An HDF5 attribute holding a list of names (bytes or str), as a list of str."""
    value = group.attrs.get(attr)
    if value is None:
        return []
    if not hasattr(value, "__iter__") or isinstance(value, (str, bytes)):
        raise Unsupported(f"weights file: attribute {attr} is not a list of names")
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in value]


def _dataset_at(group, path, where):
    node = group
    parts = path.split("/")
    for i, part in enumerate(parts):
        node = _h5_child(node, part, h5py.Dataset if i == len(parts) - 1 else h5py.Group, path)
        if node is None:
            raise Unsupported(f"{where}: weight {path} listed but not in the file")
    return node


def load_legacy_weights(model, root):
    """Weights of an ``.h5`` model file: group ``model_weights/<layer name>``, its ``weight_names``
    attribute naming each variable's dataset, ``<.../><layer name>/<variable>[:0]``. A nested model's
    group lists the variables of all its layers; each is matched to its layer by name."""
    for layer in model.children():
        shapes = _all_shapes(layer)
        group = _h5_child(root, layer.name, h5py.Group, layer.name)
        if group is None:
            if shapes:
                raise Unsupported(f"{layer.where}: the .h5 file has no weights for this layer")
            continue
        entries = [(name, _dataset_at(group, name, layer.where)) for name in _names(group, "weight_names")]
        used = _assign_legacy(layer, entries)
        if len(used) != len(entries):
            extra = [n for n, _ in entries if n not in used]
            raise Unsupported(f"{layer.where}: the .h5 file has weights {extra[:3]} that no layer of it uses")


def _all_shapes(layer):
    if layer.is_model:
        return [s for child in layer.children() for s in _all_shapes(child)]
    return layer.weight_shapes()


def _assign_legacy(layer, entries):
    if layer.is_model:
        used = set()
        for child in layer.children():
            used |= _assign_legacy(child, entries)
        return used
    shapes = layer.weight_shapes()
    if not shapes:
        return set()
    mine = {}
    for name, ds in entries:
        parts = name.split("/")
        if len(parts) >= 2 and parts[-2] == layer.name:
            mine[parts[-1].split(":")[0]] = (name, ds)
    if len(entries) == len(shapes) and set(mine) != set(layer.var_names()):
        # one layer's group: Keras 2 may name the variables after another scope; take them in order
        mine = dict(zip(layer.var_names(), entries))
    if set(mine) != set(layer.var_names()):
        raise Unsupported(f"{layer.where}: the .h5 file's weights {sorted(mine)} are not its variables "
                          f"{layer.var_names()}")
    arrays = [_read_dataset(mine[v][1], shape, layer.where, f"weight {mine[v][0]}", mine[v][0], legacy=True)
              for v, shape in zip(layer.var_names(), shapes)]
    _set_weights(layer, arrays)
    return {mine[v][0] for v in layer.var_names()}
