"""Check saved models before handing them in, exactly as the course's grader reads them.

Every notebook carries this file inside its helper cell, with ``course_data.py`` and the ``keras_numpy/``
package (the grader's own reader and NumPy engine). The notebook's "Check before you hand in" cell
calls :func:`check_before_hand_in` and each graded ``check_<id>`` cell :func:`verdict`; a TA or a
student on a laptop runs the same from a shell with ``autograder check ASSIGNMENT FOLDER``. It needs no
test labels and no network: it reads the saved files as the grader will, runs the grader's
checks of each model (:mod:`autograder.model_checks`, which the grader itself calls), compares
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
    from autograder import keras_numpy, model_checks
    from autograder.keras_numpy.architecture import ModelFileError, saved_by
    from autograder.model_files import load
    from autograder.model_files.locate import locate
    from autograder.model_files.read import inspect, job_kind
except ImportError:  # in a notebook: unpacked by its helper cell, beside keras_numpy/ and model_files/
    import keras_numpy
    import model_checks
    from keras_numpy.architecture import ModelFileError, saved_by
    from model_files import load
    from model_files.locate import locate
    from model_files.read import inspect, job_kind



# ------------------------------------------------------------------------------------------------
# The student's check
def tier_text(tiers, lower_is_better=False) -> str:
    """``[[bound, fraction], ...]`` (best first) as "full credit at >= 0.9800, 50% of the points at >= 0.9700"
    ("<=" for a metric where lower is better)."""
    sign = "<=" if lower_is_better else ">="
    return ", ".join(f"{'full credit' if fraction == 1 else f'{fraction:.0%} of the points'} at {sign} {bound:.4f}"
                     for bound, fraction in tiers)


def _fraction(check, value) -> float:
    lower = check.get("lower_is_better", False)
    return next((fraction for bound, fraction in check["tiers"] if (value <= bound if lower else value >= bound)), 0.0)


def size_text(n_bytes: int) -> str:
    """A file size as people write it: "24 KB", "1.3 MB"."""
    if n_bytes < 1000:
        return f"{n_bytes} bytes"
    if n_bytes < 10**6:
        return f"{n_bytes / 1e3:.0f} KB"
    return f"{n_bytes / 1e6:.1f} MB"


def _inputs_for(x, info, facts):
    """The validation inputs in the shape the model takes them, where the data has shapes to choose from."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    allowed = [tuple(s) for s in facts.get("input_shapes") or ()]
    shape = tuple(getattr(info, "input_shape", None) or ())
    if allowed and (shape or len(allowed) > 1):
        if shape not in allowed:
            raise ModelFileError(f"the model expects inputs of shape {shape or 'unknown'}; the grader feeds the "
                                 f"{facts['noun']} as {' or '.join(str(s) for s in allowed)}")
        return x.reshape((len(x),) + shape)
    return x


def _own_outputs(model, x):
    """The in-memory model's own predictions (Keras, or scikit-learn's probabilities)."""
    import numpy as np

    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=500, verbose=0), dtype=np.float32)


class NotJudged(Exception):
    """A check this machine cannot judge before hand-in (no validation data, no library to load the file);
    ``engine``: how the grader predicts instead, where that is why."""

    def __init__(self, message: str, engine: str | None = None):
        super().__init__(message)
        self.engine = engine


def grader_predictor(info, kind: str):
    """A function of inputs giving the outputs the grader will get from the file ``info`` was read from: the
    grader's NumPy engine for a Keras model, the model's own library (as the grader's sandbox loads it) else."""
    if kind == "keras":
        try:
            engine = keras_numpy.load(info.path)
        except keras_numpy.Unsupported as exc:
            raise NotJudged(f"the grader's NumPy engine does not read this file ({exc}); the grader loads it with "
                            "Keras instead, which works when Keras 3 can load it", engine=f"keras ({exc})") from None
        return engine.predict
    try:
        loaded = load.load_model(kind, str(info.path))
    except ImportError as exc:
        raise NotJudged(f"{exc.name or 'its library'} is not installed here, so this check cannot load "
                        f"{info.path.name} (the grader can)") from None
    return lambda x: load.scores(kind, loaded, x)


def check_model(facts, spec, folder=".", model=None, x_val=None, y_val=None, out=print, why_no_data=None) -> dict:
    """Check one saved model as the grader will read it and run every graded check of it that can be judged here;
    print what the grader will see and return it as a dict: ``checks`` {id: {"points", "of", "message",
    "judged"}} (the points predicted if the test figures are the validation figures), ``file`` (what is graded),
    ``engine``, ``agree``, ``metrics`` {id: validation figure} and ``problem`` (a file the grader cannot read)."""
    import numpy as np

    facts_ns = types.SimpleNamespace(**facts)
    checks = [c for c in facts["checks"] if c.get("model") == spec["name"]]
    report = {"name": spec["name"], "file": spec["file"], "checks": {}, "engine": None, "agree": None, "metrics": {}}

    def record(check, points, message, judged=True):
        report["checks"][check["id"]] = {"points": points, "of": check["points"], "message": message, "judged": judged}
        mark = "?" if not judged else "✓" if points == check["points"] else "~" if points > 0 else "✗"
        said = f"{points:g} of {check['points']:g} pt" if judged else f"{check['points']:g} pt, not judged here"
        out(f"  {mark} {check['id']} ({said}): {message}")

    formats = tuple(spec.get("formats") or (spec["kind"],))
    try:
        path, note = locate(folder, spec["file"], formats, claimed=tuple(spec.get("claimed", ())))
        info = inspect(spec["kind"], path, 100, formats)
    except ModelFileError as exc:
        problem = str(exc) if str(exc).startswith("model file") else f"{spec['file']}: the grader cannot read it: {exc}"
        report["problem"] = str(exc)
        out(f"✗ {problem}")
        for check in checks:
            record(check, 0, "no model to grade (above)")
        return report
    kind = job_kind(info)
    report["file"] = path.name
    size = size_text(path.stat().st_size)
    if kind == "keras":
        out(f"{path.name} ({size}), saved by {saved_by(path)}" + (f" ({note})" if note else ""))
        out(f"  {info.summary()}, {info.n_params:,} parameters")
    else:
        out(f"{path.name} ({size}): {info.summary()}" + (f" ({note})" if note else ""))
    failed = set()  # the checks of this model that it fails
    for check in checks:
        if check["id"] not in model_checks.ARCHITECTURE:
            continue
        try:
            model_checks.ARCHITECTURE[check["id"]](info, facts_ns)
            record(check, check["points"], check["title"])
        except AssertionError as exc:
            record(check, 0, str(exc))
            failed.add(check["id"])
    metric_checks = [c for c in checks if c.get("tiers")]
    if not metric_checks:
        return report
    try:
        predict = grader_predictor(info, kind)
        report["engine"] = "numpy" if kind == "keras" else kind
        if x_val is None:
            raise NotJudged("no validation data here (the note above says why)" if why_no_data
                            else "no validation data was given")
        x = _inputs_for(x_val, info, facts)
        raw_scale = facts.get("raw_scale")
        raw = bool(raw_scale) and float(np.max(x)) > 1.5
        x_own = x  # what the model in memory is compared on
        if raw:  # the notebook's own validation inputs, not scaled: the grader feeds x / raw_scale
            out(f"  note: the validation {facts['noun']} here hold values up to {float(np.max(x)):g}; the grader feeds "
                f"x / {raw_scale:g}, so they are scaled as the grader does")
            x = x / raw_scale
        grader = predict(x)
        if not np.all(np.isfinite(grader)):  # the grader refuses such outputs: no points
            raise ModelFileError("the model outputs NaN or infinite values")
    except NotJudged as exc:
        report["engine"] = exc.engine or report["engine"]
        for check in metric_checks:
            record(check, None, str(exc), judged=False)
        return report
    except ModelFileError as exc:
        report["problem"] = str(exc)
        for check in metric_checks:
            record(check, 0, str(exc))
        return report
    except Exception as exc:  # the file the grader would load fails to predict: the grader gives no points either
        report["problem"] = f"{path.name} cannot be loaded and used to predict ({type(exc).__name__}: {str(exc)[:200]})"
        for check in metric_checks:
            record(check, 0, report["problem"])
        return report
    if model is not None:
        own, engine = _own_outputs(model, x_own), grader if x_own is x else predict(x_own)
        if facts["metric"]["outputs"] == "classes":
            agree = int(np.sum(own.argmax(1) == engine.argmax(1)))
        else:
            agree = int(np.sum(np.abs(own.reshape(len(x), -1)[:, -1] - engine.reshape(len(x), -1)[:, -1]) < 1e-3))
        report["agree"] = agree
        mark = "✓" if agree == len(x) else ("~" if agree >= len(x) - max(1, len(x) // 2000) else "✗")
        out(f"  {mark} the grader's engine agrees with your model on {agree:,} of {len(x):,} validation {facts['noun']}"
            + ("" if mark != "✗" else ": the saved file is not the model in memory (save it again after training)"))
    name = facts["metric"]["title"]
    scale = None  # a MNIST model that expects 0-255 pixels: why its figures fall short
    if facts.get("scale_probe"):
        n = min(model_checks.SCALE_PROBE, len(x))
        unscaled = predict(x[:n] * facts["raw_scale"])  # the inputs as the notebook had them before scaling
        scaled, raw = (model_checks.accuracy_of(outputs[:n], y_val[:n]) for outputs in (grader, unscaled))
        scale = model_checks.input_scale_problem(scaled, raw, n, images="the validation images")
    for check in metric_checks:
        family = model_checks.SCORED_FAMILIES.get(check["id"])
        if family and f"{family}_family" in failed:
            try:
                model_checks.scored_family(info, facts_ns, family)
            except AssertionError as exc:
                record(check, 0, str(exc))
                continue
        outputs, which = grader, "validation"
        if check.get("test_set") == "moved":
            outputs, which = predict(move_digits(x, facts["validation_source"]["moved_seed"])), "moved validation"
        value = model_checks.measure(facts["metric"], outputs, np.asarray(y_val))
        report["metrics"][check["id"]] = value
        fraction = _fraction(check, value)
        margin = 2 * standard_error(facts["metric"], value, np.asarray(y_val), outputs)
        near = [bound for bound, _ in check["tiers"] if abs(value - bound) < margin]
        message = f"{which} {name} {value:.4f} ({tier_text(check['tiers'], check.get('lower_is_better', False))})"
        if near:
            message += (f"; within its uncertainty (±{margin:.4f}) of {near[0]:.4f}, so the test figure may fall on "
                        "either side")
        if fraction < 1:
            message += f": {scale or spec.get('advice', 'improve the model')}"
        record(check, round(check["points"] * fraction, 4), message)
        report["checks"][check["id"]]["borderline"] = bool(near)
    return report


def standard_error(metric: dict, value: float, labels, outputs=None) -> float:
    """The standard error of a validation figure: of an accuracy, sqrt(p (1 - p) / n); of a ROC AUC, Hanley and
    McNeil's (Radiology 143, 29 (1982)) for the numbers of signal and background events; of any other metric,
    the spread of 200 bootstrap resamples of the rows (seeded: the same figure every time)."""
    import math

    import numpy as np

    if metric["name"] == "accuracy":
        return math.sqrt(max(value * (1 - value), 1e-12) / max(len(labels), 1))
    if metric["name"] != "roc_auc":
        if outputs is None or not len(labels):
            return 0.0
        rng, outputs = np.random.default_rng(0), np.asarray(outputs)
        picks = (rng.integers(0, len(labels), len(labels)) for _ in range(200))
        return float(np.std([model_checks.measure(metric, outputs[i], labels[i]) for i in picks]))
    n1 = int((labels == 1).sum())
    n0 = len(labels) - n1
    if not n0 or not n1:
        return 0.0
    q1, q2 = value / (2 - value), 2 * value**2 / (1 + value)
    var = (value * (1 - value) + (n1 - 1) * (q1 - value**2) + (n0 - 1) * (q2 - value**2)) / (n0 * n1)
    return math.sqrt(max(var, 0.0))


def _course_data():
    """The course's data loaders (imported when data is needed: they are the heaviest helper)."""
    try:  # in the grader
        from autograder import course_data
    except ImportError:  # in a notebook, beside (or unpacked with) this file
        import course_data
    return course_data


def move_digits(x, seed):
    """The validation digits moved as the grader moves its test digits (with a seed of this check's own)."""
    return _course_data().move_digits(x, seed)


def has_problem(report: dict) -> bool:
    """A model file the grader cannot read, or a check it judges that earns no points."""
    return bool(report.get("problem")) or any(v["judged"] and v["points"] == 0 for v in report["checks"].values())


class HandInCheck(dict):
    """The reports of a check before hand-in, {model name: report}; shown as the verdict in plain words."""

    def __init__(self, reports, facts):
        super().__init__(reports)
        self.facts = facts

    def verdicts(self) -> dict:
        """Every graded check's verdict, {check id: {"points", "of", "message", "judged"}}."""
        return {cid: v for report in self.values() for cid, v in report["checks"].items()}

    def summary(self) -> list[str]:
        """The verdict as lines: the points predicted, the checks not judged here and why, what to fix."""
        verdicts = self.verdicts()
        judged = {cid: v for cid, v in verdicts.items() if v["judged"]}
        unjudged = {cid: v for cid, v in verdicts.items() if not v["judged"]}
        total = sum(c["points"] for c in self.facts["checks"])
        got = sum(v["points"] for v in judged.values())
        lines = [f"Predicted: {got:g} of {sum(v['of'] for v in judged.values()):g} points for the {len(judged)} checks "
                 f"judged here (of {total:g} points in all), if the test figures are the validation figures."]
        if unjudged:
            lines.append(f"Not judged here ({len(unjudged)} check(s), {sum(v['of'] for v in unjudged.values()):g} "
                         f"points): {', '.join(unjudged)}: " + "; ".join(dict.fromkeys(v["message"] for v in unjudged.values())))
        losing = [cid for cid, v in judged.items() if v["points"] < v["of"]]
        if losing:
            lines.append(f"{len(losing)} check(s) lose points: {', '.join(losing)}. Fix what they say, train again if "
                         "needed and re-run the save cell before you hand in.")
        elif not unjudged:
            lines.append("Every graded check passes on these files.")
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.summary())

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's display of a cell's last value
        printer.text(repr(self))


def check_saved_models(facts, models=None, x_val=None, y_val=None, folder=".", out=print, why_no_data=None
                       ) -> HandInCheck:
    """Check every model file of the assignment (see :func:`check_model`); ``models`` maps the model's
    name (e.g. "model", "dnn") to the model in memory."""
    models = models or {}
    out(f"What the grader will see of your saved models ({facts['title']}; thresholds of the "
        f"'{facts['profile']}' profile):")
    reports = {}
    for spec in facts["models"]:
        reports[spec["name"]] = check_model(facts, spec, folder, models.get(spec["name"]), x_val, y_val, out=out,
                                            why_no_data=why_no_data)
    result = HandInCheck(reports, facts)
    LAST.clear()
    LAST.update(facts=facts, reports=reports)
    for line in result.summary():
        out(line)
    return result


# The newest check of this session (the notebook's check cells give its verdicts).
LAST: dict = {}


class CheckFailed(AssertionError):
    """A check the saved files fail before hand-in; shown as its message alone (no traceback) in a notebook."""

    def _render_traceback_(self):  # IPython shows this instead of a traceback (lines nbgrader's Validate shows whole)
        import textwrap

        return textwrap.wrap(f"{type(self).__name__}: {self}", width=80, subsequent_indent="  ")


def _data_note(exc, file: str) -> str:
    """Why there is no validation data here, in one line: where the loader looked, and what would help."""
    DATA_DIR_ENV = _course_data().DATA_DIR_ENV
    lines = str(exc).splitlines()
    looked = [line.strip().lstrip("- ") for line in lines if line.startswith("  - ")]
    where = "; ".join(looked[:3]) if looked else lines[0][:200] if lines else type(exc).__name__
    folder = os.environ.get(DATA_DIR_ENV)
    hint = (f"{DATA_DIR_ENV} is {folder}, which has no usable {file}" if folder else
            f"to see the figures, put {file} in a folder and set {DATA_DIR_ENV} to it")
    return f"no validation data here (looked in: {where}); {hint}"


def validation_data(facts, out=print):
    """The validation split the assignment's notebook holds out (scaled as the grader scales its inputs), read
    with the course's loader the facts name (``validation_source``) without downloading anything; ``(None,
    None)`` where no copy of the data is here (the reason is ``validation_data.why``)."""
    course_data = _course_data()
    source = facts.get("validation_source") or {}
    validation_data.why = None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a skipped file is named in the note below
            return getattr(course_data, source["loader"])(**source["args"])
    except (course_data.DataError, OSError) as exc:
        validation_data.why = _data_note(exc, source.get("file", "the data file"))
        out(f"note: {validation_data.why}, so the validation figures are not shown")
    return None, None


def check_before_hand_in(facts, namespace=None, folder=".", out=print) -> HandInCheck:
    """The notebook's "Check before you hand in" cell: :func:`check_saved_models` with the models and the
    validation split that ``namespace`` (the notebook's variables) holds. Where it holds none of them (the
    kernel was restarted, or nbgrader's Validate runs only the check cells) the validation split is read
    from the course's data and the saved files are checked on their own."""
    namespace = namespace or {}
    models = {spec["name"]: namespace[spec["variable"]] for spec in facts["models"]
              if spec.get("variable") in namespace}
    x_name, y_name = facts.get("validation", ("x_val", "y_val"))
    why = None
    if x_name in namespace and y_name in namespace:
        x_val, y_val = namespace[x_name], namespace[y_name]
    else:
        x_val, y_val = validation_data(facts, out=out)
        why = validation_data.why
    return check_saved_models(facts, models=models, x_val=x_val, y_val=y_val, folder=folder, out=out, why_no_data=why)


def verdict(check_id: str, out=print) -> None:
    """A graded ``check_<id>`` cell: what the newest check before hand-in says of this check. Raises
    :class:`CheckFailed` with the grader's message when the saved files earn no points for it; prints the
    verdict otherwise (a check not judged here says why)."""
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
    if report.get("problem") and check_id not in report.get("checks", {}):
        raise CheckFailed(f"{points}: {report['problem']}")
    v = report.get("checks", {}).get(check_id)
    if v is None:
        raise CheckFailed(f"{points}: the check before hand-in did not reach this check; run it again")
    if not v["judged"]:
        out(f"? {points}: not judged before hand-in: {v['message']}")
        return
    if v["points"] == 0:
        problem = report.get("problem") if v["message"] == "no model to grade (above)" else v["message"]
        raise CheckFailed(f"{points}: {problem}")
    out(f"{'✓' if v['points'] == v['of'] else '~'} {points}: {v['points']:g} of {v['of']:g} points: {v['message']}")


def facts_of(assignment, profile) -> dict:
    """What the student's check needs to know of an assignment (plain values, for a notebook cell)."""
    from autograder.datasets.tasks import task_class
    from autograder.model_files.locate import expected_names

    data = task_class(assignment).student_facts(assignment)
    thresholds = assignment.thresholds.get(profile, {})
    return {
        "assignment": assignment.name,
        "title": assignment.title,
        "profile": profile,
        "dataset": assignment.dataset,
        "metric": data["metric"],
        "noun": data["noun"],
        "input_shapes": data["input_shapes"],
        "raw_scale": data["raw_scale"],
        "scale_probe": data["scale_probe"],
        "models": [{"name": m.name, "file": m.file, "kind": m.kind, "variable": m.variable, "formats": list(m.formats),
                    "claimed": [name for other in assignment.models if other is not m
                                for name in expected_names(other.file, other.formats)],
                    "advice": m.advice} for m in assignment.models],
        "families": {m.name: {"families": list(m.families), "family": m.family} for m in assignment.models if m.families},
        "validation": list(assignment.validation),
        "validation_source": data["validation_source"],
        "checks": [{
            "id": c.id, "title": c.title, "points": c.points, "model": assignment.model_of(c.id).name,
            "test_set": c.test_set,
            **({"tiers": [[t.minimum, t.fraction] for t in thresholds[c.id].best_first()],
                "lower_is_better": thresholds[c.id].lower_is_better} if c.id in thresholds else {}),
        } for c in assignment.checks],
        "allowed_layers": list(assignment.allowed_layers),
        "max_params": assignment.max_params,
        "min_conv_layers": assignment.min_conv_layers,
        "required_layers": list(assignment.required_layers),
        "forbidden_layers": list(assignment.forbidden_layers),
    }


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
