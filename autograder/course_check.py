"""Check saved models before handing them in, exactly as the course's grader reads them.

Every notebook carries this file inside its helper cell, with ``course_data.py`` and the ``keras_numpy/``
package (the grader's own reader and NumPy engine). The notebook's "Check before you hand in" cell
calls :func:`check_before_hand_in` and each graded ``check_<id>`` cell :func:`verdict`; a TA or a
student on a laptop runs the same from a shell with ``autograder check ASSIGNMENT FOLDER``. It needs no
test labels and no network: it reads the saved files as the grader will, runs the grader's
architecture checks (the functions in :data:`ARCHITECTURE`, which the grader itself calls), compares
the grader's predictions with the model's own on the validation images, and prints the validation
figure beside the thresholds.

Under ``nbgrader validate`` (the Validate button) only these cells run: the verdict of a check that
fails is the cell's error, so Validate answers "will my saved files be graded as I expect?" without
training anything or touching a model file.

It runs on NumPy 1 and 2, and on Python 3.11 to 3.13 (Colab's), with or without Keras.
"""

from __future__ import annotations

import os
import types
from pathlib import Path

try:  # in the grader
    from autograder import keras_numpy
    from autograder.keras_numpy.architecture import ModelFileError, inspect_model, locate, saved_by
except ImportError:  # in a notebook: unpacked by its helper cell, beside keras_numpy/
    import keras_numpy
    from keras_numpy.architecture import ModelFileError, inspect_model, locate, saved_by

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


ARCHITECTURE = {
    "output_layer": output_layer, "param_budget": param_budget, "layer_types": layer_types,
    "hidden_layer": hidden_layer, "conv_layers": conv_layers, "pooling": pooling, "flatten_head": flatten_head,
    "augmentation_layers": augmentation_layers, "no_flip": no_flip, "dnn_family": dnn_family,
}


# ------------------------------------------------------------------------------------------------
# The student's check
def _metric(name, outputs, labels):
    import numpy as np

    if name == "accuracy":
        return float(np.mean(np.argmax(outputs, axis=1) == labels))
    from sklearn.metrics import roc_auc_score  # SUSY: scikit-learn is there, it made the other models

    scores = outputs[:, -1] if outputs.ndim == 2 else outputs
    return float(roc_auc_score(labels, scores))


def tier_text(tiers) -> str:
    """``[[minimum, fraction], ...]`` (highest first) as "full credit at >= 0.9800, 50% of the points at >= 0.9700"."""
    return ", ".join(f"{'full credit' if fraction == 1 else f'{fraction:.0%} of the points'} at >= {minimum:.4f}"
                     for minimum, fraction in tiers)


def _fraction(check, value) -> float:
    return next((fraction for minimum, fraction in check["tiers"] if value >= minimum), 0.0)


def _inputs_for(x, info, dataset):
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    if dataset == "mnist":
        shape = tuple(info.input_shape or ())
        if shape not in MNIST_INPUT_SHAPES:
            raise ValueError(f"the model expects inputs of shape {shape or 'unknown'}; the grader feeds MNIST "
                             "images as (28, 28), (784,) or (28, 28, 1)")
        return x.reshape((len(x),) + shape)
    return x


def _own_outputs(model, x):
    """The in-memory model's own predictions (Keras, or scikit-learn's probabilities)."""
    import numpy as np

    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=500, verbose=0), dtype=np.float32)


def check_model(facts, spec, folder=".", model=None, x_val=None, y_val=None, out=print) -> dict:
    """Check one saved model as the grader will read it; print what the grader will see and return it
    as a dict (``checks``: {id: message or None}, ``agree``, ``engine``, ``metric``)."""
    import numpy as np

    report = {"file": spec["file"], "checks": {}, "engine": None, "agree": None, "metric": None}
    try:
        path, note = locate(folder, spec["file"])
        if spec["kind"] != "keras":
            if not path.is_file():
                raise ModelFileError(f"model file {spec['file']} not found")
            out(f"{spec['file']}: found ({path.stat().st_size / 1e6:.1f} MB); the grader loads it with skops and "
                "checks it there (this check reads Keras models)")
            report["engine"] = "skops"
            return report
        info = inspect_model(path)
    except ModelFileError as exc:
        out(f"✗ {exc}" if str(exc).startswith("model file") else f"✗ {spec['file']}: the grader cannot read it: {exc}")
        report["problem"] = str(exc)
        return report
    out(f"{path.name}: saved by {saved_by(path)}" + (f" ({note})" if note else ""))
    out(f"  {info.summary()}, {info.n_params:,} parameters")
    for check in facts["checks"]:
        if check.get("model") != spec["name"] or check["id"] not in ARCHITECTURE:
            continue
        try:
            ARCHITECTURE[check["id"]](info, types.SimpleNamespace(**facts))
            report["checks"][check["id"]] = None
            out(f"  ✓ {check['id']} ({check['points']:g} pt): {check['title']}")
        except AssertionError as exc:
            report["checks"][check["id"]] = str(exc)
            out(f"  ✗ {check['id']} ({check['points']:g} pt): {exc}")
    try:
        engine_model = keras_numpy.load(path)
        report["engine"] = "numpy"
    except keras_numpy.Unsupported as exc:
        out(f"  the grader's NumPy engine does not read this file ({exc}); the grader will load it with Keras "
            "instead, which works when Keras 3 can load it")
        report["engine"] = f"keras ({exc})"
        return report
    if x_val is None:
        out("  the grader's NumPy engine reads the file (no validation images given to compare predictions)")
        return report
    x = _inputs_for(x_val, info, facts["dataset"])
    grader = engine_model.predict(x)
    if model is not None:
        own = _own_outputs(model, x)
        if facts["dataset"] == "mnist":
            agree = int(np.sum(own.argmax(1) == grader.argmax(1)))
        else:
            agree = int(np.sum(np.abs(own.reshape(len(x), -1)[:, -1] - grader.reshape(len(x), -1)[:, -1]) < 1e-3))
        report["agree"] = agree
        mark = "✓" if agree == len(x) else ("~" if agree >= len(x) - max(1, len(x) // 2000) else "✗")
        unit = "images" if facts["dataset"] == "mnist" else "events"
        out(f"  {mark} the grader's engine agrees with your model on {agree:,} of {len(x):,} validation {unit}"
            + ("" if mark != "✗" else ": the saved file is not the model in memory (save it again after training)"))
    if y_val is not None:
        for check in facts["checks"]:
            if check.get("model") != spec["name"] or not check.get("tiers") or check.get("test_set", "test") != "test":
                continue
            value = _metric(facts["metric"], grader, np.asarray(y_val))
            report["metric"] = value
            report["fraction"] = fraction = _fraction(check, value)
            mark = "✓" if fraction == 1 else "✗"
            out(f"  {mark} validation {facts['metric'].replace('_', ' ')} {value:.4f} for {check['id']} "
                f"({check['points']:g} pt; {tier_text(check['tiers'])}): {fraction:.0%} of its points if the test figure is the same"
                + ("" if fraction == 1 else "; train longer (the notebook's EPOCHS) or improve the model"))
    return report


def has_problem(report: dict) -> bool:
    """A model file the grader cannot read, an architecture check it fails, or a validation figure that earns
    no points."""
    return bool(report.get("problem")) or any(report["checks"].values()) or report.get("fraction", 1) == 0


def check_saved_models(facts, models=None, x_val=None, y_val=None, folder=".", out=print) -> dict:
    """Check every model file of the assignment (see :func:`check_model`); ``models`` maps the model's
    name (e.g. "model", "dnn") to the model in memory."""
    models = models or {}
    out(f"What the grader will see of your saved models ({facts['title']}; thresholds of the "
        f"'{facts['profile']}' profile):")
    reports = {}
    for spec in facts["models"]:
        reports[spec["name"]] = check_model(facts, spec, folder, models.get(spec["name"]), x_val, y_val, out=out)
    problems = sum(1 for r in reports.values() if has_problem(r))
    short = sum(1 for r in reports.values() if r.get("fraction", 1) < 1)
    LAST.clear()
    LAST.update(facts=facts, reports=reports)
    if problems:
        out(f"{problems} model file(s) with a problem: fix them, train again and re-run the save cell before you hand in.")
    else:
        out("The grader can read every model file and its architecture checks pass"
            + (f"; {short} validation figure(s) below full credit." if short else "."))
    return reports


# The newest check of this session (the notebook's check cells give its verdicts).
LAST: dict = {}


class CheckFailed(AssertionError):
    """A check the saved files fail before hand-in; shown as its message alone (no traceback) in a notebook."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback (lines nbgrader's Validate shows whole)
        import textwrap

        return textwrap.wrap(f"{type(self).__name__}: {self}", width=80, subsequent_indent="  ")


def validation_data(facts, out=print):
    """The validation split the assignment's notebook holds out (images scaled to [0, 1]), read with the
    course's loaders without downloading anything; ``(None, None)`` where no copy of the data is here."""
    try:  # in the grader
        from autograder import course_data
    except ImportError:  # in a notebook, beside (or unpacked with) this file
        import course_data
    source = facts.get("validation_source") or {}
    try:
        if source.get("dataset") == "mnist":
            (x_train, y_train), _ = course_data.load_mnist(download=False, parts=("train",))
            rows = source["rows"]
            return x_train[-rows:].astype("float32") / source["scale"], y_train[-rows:]
        if source.get("dataset") == "susy":
            X, y = course_data.load_susy(stop=source["train_rows"], download=False)
            n_val = len(X) // source["share"]
            return X[-n_val:], y[-n_val:]
    except (course_data.DataError, OSError) as exc:
        out(f"note: no validation data here ({str(exc).splitlines()[0][:200]}), so the validation figure is not "
            "shown")
    return None, None


def check_before_hand_in(facts, namespace=None, folder=".", out=print) -> dict:
    """The notebook's "Check before you hand in" cell: :func:`check_saved_models` with the models and the
    validation split that ``namespace`` (the notebook's variables) holds. Where it holds none of them (the
    kernel was restarted, or nbgrader's Validate runs only the check cells) the validation split is read
    from the course's data and the saved files are checked on their own."""
    namespace = namespace or {}
    models = {spec["name"]: namespace[spec["variable"]] for spec in facts["models"]
              if spec.get("variable") in namespace}
    x_name, y_name = facts.get("validation", ("x_val", "y_val"))
    if x_name in namespace and y_name in namespace:
        x_val, y_val = namespace[x_name], namespace[y_name]
    else:
        x_val, y_val = validation_data(facts, out=out)
    return check_saved_models(facts, models=models, x_val=x_val, y_val=y_val, folder=folder, out=out)


def verdict(check_id: str, out=print) -> None:
    """A graded ``check_<id>`` cell: what the newest check before hand-in says of this check. Raises
    :class:`CheckFailed` with the grader's message when the saved files fail it (or earn no points on the
    validation split); prints the verdict otherwise."""
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":  # nbgrader's Execute: a course without the kit's config
        raise CheckFailed(f"{check_id} is scored by the course autograder from the saved files, not by running the "
                          "notebook: the course's nbgrader_config.py must call autograder.nbgrader_plugins.configure")
    if not LAST:
        raise CheckFailed("run the cell under \"Check before you hand in\" first: this cell shows its verdict")
    facts, reports = LAST["facts"], LAST["reports"]
    check = next((c for c in facts["checks"] if c["id"] == check_id), None)
    if check is None:
        raise CheckFailed(f"{check_id} is not a check of {facts['assignment']}")
    report = reports.get(check["model"], {})
    points = f"{check['id']} ({check['points']:g} pt)"
    if report.get("problem"):
        problem = report["problem"]
        raise CheckFailed(f"{points}: {problem if problem.startswith('model file') else report['file'] + ': ' + problem}")
    if check_id in report.get("checks", {}):
        if report["checks"][check_id]:
            raise CheckFailed(f"{points}: {report['checks'][check_id]}")
        out(f"✓ {points}: {check['title']}")
        return
    if check.get("tiers") and check.get("test_set", "test") == "test" and report.get("metric") is not None:
        value, fraction = report["metric"], report["fraction"]
        figure = f"validation {facts['metric'].replace('_', ' ')} {value:.4f}"
        if fraction == 0:
            raise CheckFailed(f"{points}: {figure} earns no points ({tier_text(check['tiers'])}); train longer "
                              "(the notebook's EPOCHS) or improve the model")
        out(f"{'✓' if fraction == 1 else '~'} {points}: {figure}, {fraction:.0%} of its points if the test figure is "
            f"the same ({tier_text(check['tiers'])})")
        return
    out(f"{points}: {check['title']}: scored by the grader on its own test data (no check before hand-in)")


def facts_of(assignment, profile) -> dict:
    """What the student's check needs to know of an assignment (plain values, for a notebook cell)."""
    thresholds = assignment.thresholds.get(profile, {})
    return {
        "assignment": assignment.name,
        "title": assignment.title,
        "profile": profile,
        "dataset": assignment.dataset,
        "metric": "accuracy" if assignment.dataset == "mnist" else "roc_auc",
        "models": [{"name": m.name, "file": m.file, "kind": m.kind, "variable": m.variable} for m in assignment.models],
        "validation": list(assignment.validation),
        "validation_source": validation_source(assignment),
        "checks": [{
            "id": c.id, "title": c.title, "points": c.points, "model": assignment.model_of(c.id).name,
            "test_set": c.test_set,
            **({"tiers": [[t.minimum, t.fraction] for t in sorted(thresholds[c.id].tiers, key=lambda t: -t.minimum)]}
               if c.id in thresholds else {}),
        } for c in assignment.checks],
        "allowed_layers": list(assignment.allowed_layers),
        "max_params": assignment.max_params,
        "min_conv_layers": assignment.min_conv_layers,
        "required_layers": list(assignment.required_layers),
        "forbidden_layers": list(assignment.forbidden_layers),
    }


def validation_source(assignment) -> dict:
    """Where the notebook's validation split comes from, as plain values (see :func:`validation_data`)."""
    import course_config

    if assignment.dataset == "mnist":
        return {"dataset": "mnist", "rows": course_config.MNIST_VALIDATION_ROWS, "scale": course_config.MNIST_PIXEL_SCALE}
    return {"dataset": "susy", "train_rows": course_config.SUSY_DATA["quick"].train_rows,
            "share": course_config.SUSY_VALIDATION_SHARE}


def main(argv=None) -> int:
    """``python course_check.py FACTS.json [FOLDER]``: the check from a shell (the grader's CLI wraps it)."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__.splitlines()[0])
        print("usage: python course_check.py FACTS.json [FOLDER]")
        return 2
    facts = json.loads(Path(args[0]).read_text())
    reports = check_saved_models(facts, folder=args[1] if len(args) > 1 else ".")
    return 1 if any(has_problem(r) for r in reports.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
