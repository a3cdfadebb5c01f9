"""Sequential and Functional models: parsing, shape inference, the layer graph, running it."""

from __future__ import annotations

from .activations import _ACTIVATIONS
from .config import Unsupported, _compat, _Config, _is_int, _shape_list, _where, round_to
from .layers import _LAYERS, _REFUSED
from .layers.base import _Layer, _Merge
from .layers.convolutional import _Conv2D
from .layers.pooling import _MaxPooling2D
from .layers.preprocessing import _Normalization

_WRAPPER_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "compile_config",
                 "name", "inbound_nodes", "shared_object_id"}


_MODEL_MODULES = {
    "Sequential": ("keras", "keras.models", "keras.src.models.sequential"),
    "Functional": ("keras", "keras.models", "keras.src.models.functional"),
}


def _build_shape(entry, where):
    """The ``build_config`` input shape (with the batch dimension), a list of them for merge layers."""
    bc = entry.get("build_config")
    if bc is None:
        return None
    if not isinstance(bc, dict) or set(bc) - {"input_shape"}:
        raise Unsupported(f"{where}: build_config {bc!r} is not supported")
    if not bc:
        return None
    shape = bc.get("input_shape")
    if shape is None:
        # Layer.build_from_config would call build(None); only a Functional model skips that.
        if entry.get("class_name") == "Functional":
            return None
        raise Unsupported(f"{where}: build_config without an input shape is not supported")
    if isinstance(shape, list) and shape and all(isinstance(s, list) for s in shape):
        return [_shape_list(s, where, "build input_shape") for s in shape]
    if not isinstance(shape, list) or not shape:
        raise Unsupported(f"{where}: build_config input_shape {shape!r} is not supported")
    return _shape_list(shape, where, "build input_shape")


def _parse_entry(entry, context):
    """A layer or nested model from its serialized ``{"module", "class_name", "config"}`` dict."""
    if not isinstance(entry, dict):
        raise Unsupported(f"malformed model file: a layer entry in {context} is not an object")
    cls = entry.get("class_name")
    if not isinstance(cls, str):
        raise Unsupported(f"malformed model file: a layer entry in {context} has no class_name")
    extra = set(entry) - _WRAPPER_KEYS
    if extra:
        raise Unsupported(f"a {cls} entry in {context} has unknown keys {sorted(extra)}")
    if not isinstance(entry.get("compile_config", {}), (dict, type(None))):
        raise Unsupported(f"malformed model file: compile_config of a {cls} entry is not an object")
    cfg = entry.get("config")
    name = cfg.get("name") if isinstance(cfg, dict) else None
    where = _where(name, cls)
    if entry.get("registered_name") not in (None, cls if cls in _MODEL_MODULES else None):
        raise Unsupported(f"{where}: custom (registered) class {entry.get('registered_name')!r} is not supported")
    if cls in _MODEL_MODULES:
        if entry.get("module") not in _MODEL_MODULES[cls]:
            raise Unsupported(f"{where}: module {entry.get('module')!r} is not supported")
        model = _Sequential(cfg) if cls == "Sequential" else _Functional(cfg)
        model.build_shape = _build_shape(entry, where)
        return model
    if cls in _REFUSED:
        raise Unsupported(f"{where}: layer type {cls} is not supported ({_REFUSED[cls]})")
    if cls not in _LAYERS or cls == "InputLayer":
        raise Unsupported(f"{where}: layer type {cls} is not supported")
    if entry.get("module") != "keras.layers":
        raise Unsupported(f"{where}: module {entry.get('module')!r} is not supported")
    c = _Config(cfg, cls)
    layer = _LAYERS[cls](c)
    c.finish()
    layer.build_shape = _build_shape(entry, where)
    layer.compute_dtype = c.compute_dtype
    return layer


def _call(layer, x, rounded=False):
    """``layer.call(x)``; in a mixed-precision layer with inputs (unless already ``rounded`` to its
    compute dtype) and outputs rounded to its compute dtype."""
    dtype = layer.compute_dtype
    if dtype == "float32":
        return layer.call(x)
    if not rounded:
        x = [round_to(v, dtype) for v in x] if isinstance(x, list) else round_to(x, dtype)
    return round_to(layer.call(x), dtype)


def _parse_input_layer(entry, context):
    if not isinstance(entry, dict) or entry.get("class_name") != "InputLayer":
        raise Unsupported(f"malformed model file: expected an InputLayer in {context}")
    extra = set(entry) - _WRAPPER_KEYS
    if extra:
        raise Unsupported(f"an InputLayer entry in {context} has unknown keys {sorted(extra)}")
    if entry.get("module") != "keras.layers" or entry.get("registered_name") is not None:
        raise Unsupported(f"InputLayer in {context}: module {entry.get('module')!r} is not supported")
    c = _Config(entry.get("config"), "InputLayer")
    c.seen.add("name")
    bs = c.get("batch_shape") if c.has("batch_shape") else c.get("batch_input_shape")
    c.seen.add("batch_input_shape")
    if c.has("batch_shape") and c.has("batch_input_shape"):
        raise Unsupported(f"{c.where}: both batch_shape and batch_input_shape given")
    if not isinstance(bs, list) or len(bs) < 2:
        raise Unsupported(f"{c.where}: batch_shape={bs!r} is not supported")
    # A Sequential built by fit() without keras.Input records its first batch size here; Keras
    # ignores it when predicting (every layer works per sample), and so do we.
    shape = _shape_list(bs, c.where, "batch_shape")[1:]
    if c.get("dtype") != "float32":
        raise Unsupported(f"{c.where}: input dtype {c.get('dtype')!r} is not supported (float32 only)")
    c.must("sparse", False, False)
    c.must("ragged", False, False)
    c.must("optional", False, False)
    c.finish()
    return c.name, shape


class _Model(_Layer):
    is_model = True

    def children(self):
        """The layers in Keras' ``model.layers`` order (the weight file's order)."""
        raise NotImplementedError


class _Sequential(_Model):
    class_name = "Sequential"

    def __init__(self, cfg):
        c = _Config(cfg, "Sequential")
        super().__init__(c)
        c.base(dtype=False)
        layers = c.get("layers")
        if not isinstance(layers, list) or not layers:
            raise Unsupported(f"{c.where}: has no layers")
        self.declared_input = None
        self.input_name = None
        if isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer":
            self.input_name, self.declared_input = _parse_input_layer(layers[0], c.where)
            layers = layers[1:]
        bis = c.get("build_input_shape")
        if bis is not None:
            if not isinstance(bis, list) or not bis:
                raise Unsupported(f"{c.where}: build_input_shape={bis!r} is not supported")
            bis = _shape_list(bis, c.where, "build_input_shape")[1:]
            if self.declared_input is None:
                self.declared_input = bis
            elif bis != self.declared_input:
                raise Unsupported(f"{c.where}: build_input_shape does not match its InputLayer")
        self.layers = [_parse_entry(e, c.where) for e in layers]
        if not self.layers:
            raise Unsupported(f"{c.where}: has no layers")
        names = [self.input_name] if self.input_name is not None else []
        names += [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise Unsupported(f"{c.where}: layer names are not unique")
        for layer in self.layers:
            if isinstance(layer, _Merge):
                raise Unsupported(f"{layer.where}: merge layers need a Functional model")
        c.finish()

    def children(self):
        return self.layers

    def build(self, shape):
        if self.declared_input is not None and not _compat(shape, self.declared_input):
            raise Unsupported(f"{self.where}: declared input {(None, *self.declared_input)} "
                              f"does not match {(None, *shape)}")
        for layer in self.layers:
            shape = _build_layer(layer, shape)
        return shape

    def call(self, x):
        previous = "float32"
        for layer in self.layers:
            x = _call(layer, x, rounded=previous == layer.compute_dtype)
            previous = "float32" if layer.is_model else layer.compute_dtype
        return x


def _tensor_ref(t, where):
    """``(layer_name, shape)`` of a serialized ``__keras_tensor__`` produced by a layer's first node."""
    if not isinstance(t, dict) or t.get("class_name") != "__keras_tensor__" or set(t) != {"class_name", "config"}:
        raise Unsupported(f"{where}: a call argument is not a Keras tensor (constants are not supported)")
    cfg = t.get("config")
    if not isinstance(cfg, dict) or set(cfg) != {"shape", "dtype", "keras_history"}:
        raise Unsupported(f"{where}: malformed tensor reference {t!r}")
    hist = cfg.get("keras_history")
    if not (isinstance(hist, list) and len(hist) == 3 and isinstance(hist[0], str)):
        raise Unsupported(f"{where}: malformed tensor reference {t!r}")
    if hist[1] != 0 or hist[2] != 0 or not _is_int(hist[1]) or not _is_int(hist[2]):
        raise Unsupported(f"{where}: uses output {hist[1:]} of layer {hist[0]!r}; only single-use, "
                          "single-output layers are supported")
    shape = cfg.get("shape")
    if shape is None and cfg.get("dtype") is None:  # a Keras 2 call node (compat.canonical): no shape recorded
        return hist[0], None
    if not isinstance(shape, list) or not shape:
        raise Unsupported(f"{where}: malformed tensor shape {shape!r}")
    shape = _shape_list(shape, where, "tensor shape")[1:]
    if cfg.get("dtype") not in ("float32", "float16", "bfloat16"):
        raise Unsupported(f"{where}: tensor dtype {cfg.get('dtype')!r} is not supported")
    return hist[0], shape


def _io_ref(value, where, what):
    """``input_layers`` / ``output_layers``: exactly one ``[name, 0, 0]``."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]
    if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
        raise Unsupported(f"{where}: {what} {value!r} is not supported (one input and one output only)")
    if value[1] != 0 or value[2] != 0 or not _is_int(value[1]) or not _is_int(value[2]):
        raise Unsupported(f"{where}: {what} {value!r} is not supported")
    return value[0]


class _InputStub(_Layer):
    """A Functional model's InputLayer: part of ``model.layers`` (so of the weight naming), no weights."""

    class_name = "InputLayer"

    def __init__(self, name):
        self.name = name
        self.where = _where(name, "InputLayer")
        self.build_shape = None


class _Node:
    is_input = False

    def __init__(self, name, layer, parents, merge, recorded_shapes):
        self.name = name
        self.layer = layer
        self.parents = parents  # names of the layers whose outputs this node consumes, in order
        self.merge = merge  # the call takes a list of tensors
        self.recorded_shapes = recorded_shapes


class _Functional(_Model):
    class_name = "Functional"

    def __init__(self, cfg):
        c = _Config(cfg, "Functional")
        super().__init__(c)
        c.base(dtype=False)
        entries = c.get("layers")
        if not isinstance(entries, list) or not entries:
            raise Unsupported(f"{c.where}: has no layers")
        nodes = {}
        order = []  # config order
        for entry in entries:
            if not isinstance(entry, dict):
                raise Unsupported(f"malformed model file: a layer entry in {c.where} is not an object")
            name = entry.get("name")
            cname = entry.get("config", {}).get("name") if isinstance(entry.get("config"), dict) else None
            if not isinstance(name, str) or name != cname:
                raise Unsupported(f"malformed model file: layer entry names {name!r} / {cname!r} in {c.where}")
            if name in nodes:
                raise Unsupported(f"{c.where}: layer name {name!r} is used twice")
            inbound = entry.get("inbound_nodes")
            if not isinstance(inbound, list):
                raise Unsupported(f"malformed model file: layer {name!r} has no inbound_nodes")
            if entry.get("class_name") == "InputLayer":
                _, shape = _parse_input_layer(entry, c.where)
                if inbound:
                    raise Unsupported(f"{c.where}: InputLayer {name!r} has inbound nodes")
                node = _Node(name, _InputStub(name), [], False, None)
                node.is_input = True
                node.shape = shape
            else:
                layer = _parse_entry(entry, c.where)
                if len(inbound) != 1:
                    raise Unsupported(f"{layer.where}: is called {len(inbound)} times; shared (reused) layers "
                                      "are not supported" if inbound else f"{layer.where}: is never called")
                node = self._parse_node(layer, inbound[0])
            nodes[name] = node
            order.append(name)
        self.input_name = _io_ref(c.get("input_layers"), c.where, "input_layers")
        self.output_name = _io_ref(c.get("output_layers"), c.where, "output_layers")
        if self.input_name not in nodes or not nodes[self.input_name].is_input:
            raise Unsupported(f"{c.where}: input {self.input_name!r} is not an InputLayer of the model")
        if self.output_name not in nodes:
            raise Unsupported(f"{c.where}: output layer {self.output_name!r} is not in the model")
        for node in nodes.values():
            for p in node.parents:
                if p not in nodes:
                    raise Unsupported(f"{c.where}: layer {node.name!r} consumes unknown layer {p!r}")
        self.nodes = nodes
        self.operations = self._map_graph()
        if set(self.operations) != set(nodes):
            unused = sorted(set(nodes) - set(self.operations))
            raise Unsupported(f"{c.where}: layers {unused} are not connected to the output")
        inputs = [n for n in self.operations if nodes[n].is_input]
        if inputs != [self.input_name]:
            raise Unsupported(f"{c.where}: the graph has inputs {inputs}; only one input is supported")
        self.declared_input = nodes[self.input_name].shape
        c.finish()

    def _parse_node(self, layer, node):
        where = layer.where
        if not isinstance(node, dict) or set(node) != {"args", "kwargs"}:
            raise Unsupported(f"{where}: malformed call node {node!r}")
        args, kwargs = node["args"], node["kwargs"]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise Unsupported(f"{where}: malformed call node")
        for key, value in kwargs.items():
            # Model.predict passes training=False to every layer, overriding a recorded value.
            if key == "training" and (value is None or isinstance(value, bool)):
                continue
            if key == "mask" and value is None:
                continue
            raise Unsupported(f"{where}: call argument {key}={value!r} is not supported")
        merge = isinstance(layer, _Merge)
        if len(args) != 1:
            raise Unsupported(f"{where}: called with {len(args)} positional arguments")
        if merge:
            tensors = args[0]
            if not isinstance(tensors, list) or len(tensors) < 2:
                raise Unsupported(f"{where}: a merge layer needs a list of at least two tensors")
        else:
            tensors = [args[0]]
        refs = [_tensor_ref(t, where) for t in tensors]
        return _Node(layer.name, layer, [r[0] for r in refs], merge, [r[1] for r in refs])

    def _map_graph(self):
        """Layer order of keras.src.ops.function.map_graph: by depth from the output, ties by
        first DFS visit. This is ``model.layers``' order, hence the weight file's."""
        nodes = self.nodes
        finished, in_progress = set(), set()
        post_order, index = [], {}

        def visit(name, depth=0):
            if depth > 10000:
                raise Unsupported(f"{self.where}: graph too deep")
            if name in finished:
                return
            if name in in_progress:
                raise Unsupported(f"{self.where}: the layer graph has a cycle at {name!r}")
            index.setdefault(name, len(index))
            in_progress.add(name)
            for p in nodes[name].parents:
                visit(p, depth + 1)
            finished.add(name)
            in_progress.discard(name)
            post_order.append(name)

        visit(self.output_name)
        depths = {}
        node_depth = {}
        for name in reversed(post_order):
            d = node_depth.setdefault(name, 0)
            d = max(d, depths.get(name, 0))
            depths[name] = d
            node_depth[name] = d
            for p in nodes[name].parents:
                node_depth[p] = max(d + 1, node_depth.get(p, 0))
        return sorted(depths, key=lambda n: (-depths[n], index[n]))

    def children(self):
        return [self.nodes[n].layer for n in self.operations]

    def build(self, shape):
        if not _compat(shape, self.declared_input):
            raise Unsupported(f"{self.where}: declared input {(None, *self.declared_input)} "
                              f"does not match {(None, *shape)}")
        shapes = {self.input_name: shape}
        for name in self.operations:
            node = self.nodes[name]
            if node.is_input:
                continue
            ins = [shapes[p] for p in node.parents]
            for got, rec in zip(ins, node.recorded_shapes):
                if rec is not None and not _compat(got, rec):
                    raise Unsupported(f"{node.layer.where}: recorded input shape {(None, *rec)} "
                                      f"does not match {(None, *got)}")
            shapes[name] = _build_layer(node.layer, ins if node.merge else ins[0])
        return shapes[self.output_name]

    def call(self, x):
        values = {self.input_name: x}
        remaining = {}
        for node in self.nodes.values():
            for p in node.parents:
                remaining[p] = remaining.get(p, 0) + 1
        for name in self.operations:
            node = self.nodes[name]
            if node.is_input:
                continue
            ins = [values[p] for p in node.parents]
            values[name] = _call(node.layer, ins if node.merge else ins[0])
            for p in node.parents:  # free intermediate results as soon as they are consumed
                remaining[p] -= 1
                if remaining[p] == 0 and p != self.output_name:
                    del values[p]
        return values[self.output_name]


def _build_layer(layer, shape):
    bs = layer.build_shape
    if isinstance(layer, _Merge):
        shape = [tuple(s) for s in shape]
        if bs is not None and not (
            isinstance(bs, list) and len(bs) == len(shape) and all(_compat(b[1:], s) for b, s in zip(bs, shape))
        ):
            raise Unsupported(f"{layer.where}: was built for inputs {bs} but receives {shape}")
        return layer.build(shape)
    shape = tuple(shape)
    if bs is not None and not isinstance(layer, _Normalization):
        # Keras builds the layer from its build_config before the graph runs through it.
        same = _compat(bs[1:], shape) if layer.is_model else bs[1:] == shape
        if not isinstance(bs, tuple) or not same:
            raise Unsupported(f"{layer.where}: was built for input {bs} but receives {(None, *shape)}")
    if isinstance(layer, _Normalization) and bs is not None and not isinstance(bs, tuple):
        raise Unsupported(f"{layer.where}: build_config {bs} is not supported")
    out = layer.build(shape)
    # The most float32 values one sample holds at once in this layer: its output, or its im2col buffer.
    layer.sample_floats = max(_size(out), getattr(layer, "work_floats", 0))
    return out


def _size(shape) -> int:
    """Values per sample of an output shape (1 for an unknown dimension)."""
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else 1
    return n


def sample_floats(model) -> int:
    """The largest number of float32 values any one layer of ``model`` holds per sample."""
    most = getattr(model, "sample_floats", 1)
    if model.is_model:
        for child in model.children():
            most = max(most, sample_floats(child))
    return most


def _defer_into_pool(conv, pool):
    """Conv2D (linear or relu) -> MaxPooling2D: add the bias and apply the activation after pooling.

    Exact, not an approximation: rounding ``x + b`` and relu are monotone, so the maximum of
    ``relu(x + b)`` over a window is ``relu(max(x) + b)`` bit for bit (a 'same' window always holds
    at least one real value, and the -inf padding never wins). It saves work on 4x more values.
    """
    if (
        type(conv) is _Conv2D
        and type(pool) is _MaxPooling2D
        and conv.act in (None, _ACTIVATIONS["relu"])
        and not conv.defer
        and conv.compute_dtype == pool.compute_dtype == "float32"
    ):
        conv.defer = True
        pool.post = (conv.bias, conv.act)


def _optimize(model):
    if isinstance(model, _Sequential):
        for layer, nxt in zip(model.layers, model.layers[1:]):
            _defer_into_pool(layer, nxt)
    elif isinstance(model, _Functional):
        consumers = {}
        for node in model.nodes.values():
            for p in node.parents:
                consumers.setdefault(p, []).append(node.name)
        for name, users in consumers.items():
            if len(users) == 1 and name != model.output_name and not model.nodes[users[0]].merge:
                _defer_into_pool(model.nodes[name].layer, model.nodes[users[0]].layer)
    for child in model.children():
        if child.is_model:
            _optimize(child)
