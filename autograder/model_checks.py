"""The graded checks of a model, read from its file: the rules the grader and the check before hand-in share.

:data:`ARCHITECTURE` maps a check id to a function ``(model, facts)`` that raises AssertionError with the
student's message: ``model`` is what :mod:`autograder.model_files` read from the file (a Keras model's
layers, a scikit-learn, XGBoost or LightGBM model's estimator), ``facts`` the assignment
(course_config.Assignment in the grader, the released FACTS in a notebook). The grader's check modules
(:mod:`autograder.checks`) call them; so does :mod:`autograder.course_check` in the student's notebook, which
carries this file in its helper cell. Also here: the families a metric is scored for, and the diagnosis of a
model that expects raw 0-255 pixels. Standard library only (NumPy where a figure is computed).
"""

from __future__ import annotations

NONLINEAR_EXCLUDED = {None, "linear", "softmax"}
# Layers that pass values on unchanged when predicting: skipped when looking for the output layer.
PASS_THROUGH = ("Dropout", "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")
# Layers that apply an activation function to each value (allowed wherever Dense layers are).
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
POOLING = ("MaxPooling2D", "AveragePooling2D")
GLOBAL_POOLING = ("GlobalAveragePooling2D", "GlobalMaxPooling2D")
HEAD_ENTRY = ("Flatten",) + GLOBAL_POOLING
MNIST_INPUT_SHAPES = ((28, 28), (784,), (28, 28, 1))


# ------------------------------------------------------------------------------------------------
# What a network is, whatever its spelling
def effective_output(model) -> tuple[object, str | None]:
    """The model's last weighted layer and the activation that ends the network.

    A ``Dense(10)`` followed by ``Activation("softmax")`` or ``Softmax()`` counts as ``Dense(10, softmax)``.
    """
    indices = [i for i, layer in enumerate(model.layers) if layer.class_name != "InputLayer" and not layer.is_activation
               and layer.class_name not in PASS_THROUGH]
    if not indices:
        return None, None
    return model.layers[indices[-1]], model.effective_activation(indices[-1])


def hidden_dense_activations(model) -> list[str | None]:
    """The activation of each Dense layer but the last, as a network: ``Dense(256)`` followed by
    ``Activation("relu")`` or ``ReLU()`` is a relu layer."""
    dense = [i for i, layer in enumerate(model.layers) if layer.class_name == "Dense"]
    return [model.effective_activation(i) for i in dense[:-1]]


def _output_as_network(layer, activation) -> str:
    if layer is None:
        return "no layers"
    return f"Dense({layer.config.get('units')}, {activation})" if layer.class_name == "Dense" else layer.describe()


# ------------------------------------------------------------------------------------------------
# The architecture checks: check id -> function(model, facts), raising AssertionError with the
# student's message. ``facts`` is the assignment (course_config.Assignment in the grader, the
# released FACTS in a notebook): allowed_layers, max_params, min_conv_layers, required_layers,
# forbidden_layers.
def output_layer(model, facts, n_classes: int = 10) -> None:
    layer, activation = effective_output(model)
    assert layer is not None, "the model has no layers"
    assert layer.class_name == "Dense" and layer.config.get("units") == n_classes and activation == "softmax", (
        f"output layer must be Dense({n_classes}, softmax) so that the model outputs class probabilities; "
        f"found {_output_as_network(layer, activation)}"
    )


def param_budget(model, facts) -> None:
    assert model.n_params <= facts.max_params, (
        f"the model has {model.n_params:,} parameters; the budget is {facts.max_params:,}. "
        "Use fewer or narrower layers."
    )


def layer_types(model, facts) -> None:
    allowed = (*facts.allowed_layers, *ACTIVATION_LAYERS)
    other = sorted({t for t in model.layer_types() if t not in allowed})
    assert not other, (
        f"a fully connected network uses only {', '.join(facts.allowed_layers[1:])} layers (and activation "
        f"layers such as ReLU); found {', '.join(other)}"
    )


def hidden_layer(model, facts) -> None:
    hidden = [act for act in hidden_dense_activations(model) if act not in NONLINEAR_EXCLUDED]
    assert hidden, (
        "the network needs at least one hidden Dense layer with a nonlinear activation (e.g. relu) "
        f"before the output layer; found {model.summary() or 'no layers'}"
    )


def conv_layers(model, facts) -> None:
    n = model.layer_types().count("Conv2D")
    assert n >= facts.min_conv_layers, (
        f"a CNN needs at least {facts.min_conv_layers} Conv2D layers to build features from local patterns; "
        f"found {n} ({model.summary() or 'no layers'})"
    )


def pooling(model, facts) -> None:
    assert any(t in POOLING for t in model.layer_types()), (
        "add at least one pooling layer (e.g. MaxPooling2D((2, 2))) after a convolution: pooling halves the "
        f"image size and makes features tolerant to small shifts; found {model.summary()}"
    )


def flatten_head(model, facts) -> None:
    """Between the last Conv2D and the first Dense there must be a Flatten or global pooling layer."""
    types_ = model.layer_types()
    convs = [i for i, t in enumerate(types_) if t == "Conv2D"]
    denses = [i for i, t in enumerate(types_) if t == "Dense"]
    assert convs and denses, f"expected convolutions followed by a Dense head; found {model.summary()}"
    between = types_[convs[-1] + 1 : next((d for d in denses if d > convs[-1]), len(types_))]
    assert any(t in HEAD_ENTRY for t in between), (
        "turn the feature maps into a vector before the Dense head with Flatten() or GlobalAveragePooling2D(); "
        f"found {model.summary()}"
    )


def augmentation_layers(model, facts) -> None:
    missing = [name for name in facts.required_layers if name not in model.layer_types()]
    assert not missing, f"add {', '.join(missing)} to the model (found {model.summary()})"


def no_flip(model, facts) -> None:
    found = sorted({t for t in model.layer_types() if t in facts.forbidden_layers})
    assert not found, f"remove {', '.join(found)}: a flipped digit is a different symbol (a mirrored 2 is not a 2)"


def dnn_family(model, facts) -> None:
    allowed = (*facts.allowed_layers, *ACTIVATION_LAYERS)
    other = sorted({t for t in model.layer_types() if t not in allowed})
    assert not other, (f"the deep network may use only {', '.join(facts.allowed_layers[1:])} layers (and "
                       f"activation layers such as ReLU); found {', '.join(other)}")
    assert any(act not in NONLINEAR_EXCLUDED for act in hidden_dense_activations(model)), (
        f"the network needs hidden Dense layers with a nonlinear activation; found {model.summary()}"
    )
    out, activation = effective_output(model)
    ok = out is not None and out.class_name == "Dense" and (
        (out.config.get("units") == 1 and activation == "sigmoid")
        or (out.config.get("units") == 2 and activation == "softmax")
    )
    assert ok, ("the output layer must give the signal probability: Dense(1, sigmoid) (or Dense(2, softmax)); "
                f"found {_output_as_network(out, activation) if out else 'no Dense layer'}")


def _family_check(name: str):
    """The check that a non-Keras model is of the family the assignment asks for (``facts.families[name]``)."""
    def family(model, facts) -> None:
        want = facts.families[name]
        assert model.final_estimator in want["families"], (
            f"{model.path.name} must hold {want['family']} ({_or(want['families'])}; alone or as the last step of a "
            f"Pipeline); found {model.summary()}"
        )
    family.__name__ = f"{name}_family"
    return family


def scored_family(model, facts, name: str) -> None:
    """A metric counts only for the family asked for: a stronger model under its name earns nothing."""
    want = facts.families[name]
    assert model.final_estimator in want["families"], (
        f"this figure is scored only for {want['family']} ({_or(want['families'])}); {model.path.name} holds "
        f"{model.summary()}"
    )


def _or(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


ARCHITECTURE = {
    "output_layer": output_layer, "param_budget": param_budget, "layer_types": layer_types,
    "hidden_layer": hidden_layer, "conv_layers": conv_layers, "pooling": pooling, "flatten_head": flatten_head,
    "augmentation_layers": augmentation_layers, "no_flip": no_flip, "dnn_family": dnn_family,
    "logreg_family": _family_check("logreg"), "trees_family": _family_check("trees"),
}
METRIC_NAMES = {"accuracy": "accuracy", "roc_auc": "ROC AUC"}
# Metric checks that count only when the model's family check passes: {metric check: model name}.
SCORED_FAMILIES = {"logreg_auc": "logreg", "trees_auc": "trees"}


# ------------------------------------------------------------------------------------------------
# Input scale: MNIST pixels are fed in [0, 1]; a model trained on raw 0-255 pixels (a Rescaling(1/255)
# layer inside, as in TensorFlow's tutorials) scores near chance on them. The grader predicts the first
# SCALE_PROBE test images as 0-255 pixels too, and the student's check the first validation images.
SCALE_PROBE = 500


def input_scale_problem(scaled: float, raw: float, n: int = SCALE_PROBE, images: str = "these images") -> str | None:
    """The diagnosis when a model does far better on 0-255 pixels than on the [0, 1] pixels it is fed (``n`` of
    ``images``, e.g. "the test images")."""
    if raw >= 0.5 and raw >= scaled + 0.3:
        return (f"the model expects pixels in 0-255: on {n} of {images} given as 0-255 it scores {raw:.4f}, on the "
                f"[0, 1] pixels the grader feeds it (as the notebook does: x / 255) {scaled:.4f}. Remove its "
                "Rescaling(1./255) layer, or train it on x / 255 as the notebook does, and save it again")
    return None


def accuracy_of(outputs, labels) -> float:
    import numpy as np

    return float(np.mean(np.argmax(outputs, axis=1) == np.asarray(labels)))


def measure(metric: dict, outputs, labels) -> float:
    """The metric ``metric`` describes (``autograder.config.Metric.as_facts``) of a model's outputs against the
    labels: the grader's figure and the student's check's, by the same function."""
    import importlib

    import numpy as np

    outputs = np.asarray(outputs)
    if metric["outputs"] == "classes":
        predictions = np.argmax(outputs, axis=1)
    elif metric["outputs"] == "score":
        predictions = outputs[:, -1] if outputs.ndim == 2 else outputs
    else:
        predictions = outputs.reshape(len(outputs))
    own = _COMPUTED_HERE.get(metric["function"])
    if own is not None:
        return float(own(np.asarray(labels), predictions))
    module, _, name = metric["function"].partition(":")
    return float(getattr(importlib.import_module(module), name)(np.asarray(labels), predictions))


def _accuracy(labels, predicted) -> float:
    import numpy as np

    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


# Metric functions computed here with NumPy (the same figure as scikit-learn's), so that the check before hand-in
# of an MNIST notebook runs where scikit-learn is not installed.
_COMPUTED_HERE = {"sklearn.metrics:accuracy_score": _accuracy}
