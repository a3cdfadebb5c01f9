"""Time to 99.0 % test accuracy: the course's reference CNN against the keras-io anchor, same run.

(a) the reference: model, optimizer and batch size exactly as ``solutions/mnist_cnn`` builds them
    (the notebook's cells are executed; its ``model.fit`` call is captured, not copied);
(b) the anchor: the keras-io "Simple MNIST convnet" recipe (Conv32-3x3, MaxPool, Conv64-3x3,
    MaxPool, Flatten, Dropout 0.5, Dense 10; Adam, batch 128, 54,000 training images).

The reference's learning-rate schedule spans its ``EPOCHS`` parameter; by default the benchmark
uses the quick profile's value (the course's short training budget), ``--epochs`` sets another.
Both train one epoch per ``fit()`` call, alternating (so a busy machine slows both alike), and
are evaluated on the 10,000 MNIST test images after each epoch. The time counted is the sum of the whole ``fit()`` calls (evaluation excluded), so
TensorFlow's end-of-fit stalls are included. Prints the seconds each needs to first reach the
target and the ratio reference / anchor (goal: <= 0.33 on 2 CPU cores).

    python bench/time_to_accuracy.py [--target 0.99] [--epochs N] [--max-epochs 15] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib  # noqa: E402
import io  # noqa: E402

import numpy as np  # noqa: E402
from machine import describe  # noqa: E402  (bench/ is this script's folder)

import course_config  # noqa: E402

REFERENCE = "mnist_cnn"
# Cells of the solution notebook that set up data, model and optimizer, in order (the helper cell unpacks
# course_data, which the imports cell uses).
SETUP_CELLS = ("parameters", "fetch_helpers", "imports", "load_data", "normalise", "validation_split", "build_model",
               "model_summary", "compile")


class _FitCaptured(Exception):
    pass


def reference(epochs: int, seed: int):
    """Build the reference exactly as the solution notebook does; return (model, fit arguments)."""
    import nbformat

    a = course_config.assignment(REFERENCE)
    nb = nbformat.read(course_config.COURSE_DIR / "solutions" / a.name / a.notebook, 4)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}
    missing = [c for c in SETUP_CELLS + ("train",) if c not in cells]
    if missing:
        raise SystemExit(f"solution notebook lacks cells {missing}")
    ns: dict = {}
    cwd = os.getcwd()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the notebook's own prints and summary
            for gid in SETUP_CELLS:
                source = cells[gid]
                if gid == "parameters":
                    source += f"\nEPOCHS = {epochs}\nSEED = {seed}\n"
                exec(compile(source, gid, "exec"), ns)
        captured = {}

        def capture(*args, **kwargs):
            captured.update(kwargs)
            captured["args"] = args
            raise _FitCaptured

        real_fit = ns["model"].fit
        ns["model"].fit = capture
        try:
            exec(compile(cells["train"], "train", "exec"), ns)
        except _FitCaptured:
            pass
        ns["model"].fit = real_fit
    finally:
        os.chdir(cwd)
    args = captured.pop("args", ())
    x = args[0] if len(args) > 0 else captured.pop("x")
    y = args[1] if len(args) > 1 else captured.pop("y")
    fit_kwargs = {k: v for k, v in captured.items() if k in ("batch_size", "shuffle", "class_weight")}
    return ns["model"], x, y, fit_kwargs, ns


def anchor(x_train, y_train, seed: int):
    """The keras-io "Simple MNIST convnet" recipe, with its 90 % training split."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    x = (x_train.astype("float32") / 255.0)[..., None]
    y = keras.utils.to_categorical(y_train, 10)
    n_fit = int(len(x) * 0.9)  # keras-io trains with validation_split=0.1: the first 90 %
    return model, x[:n_fit], y[:n_fit], {"batch_size": 128}


class Runner:
    """One model in the race: trains an epoch per fit() call and records (epoch, seconds, accuracy)."""

    def __init__(self, name, model, x, y, fit_kwargs, x_test, y_test, max_epochs):
        self.name, self.model, self.x, self.y, self.fit_kwargs = name, model, x, y, fit_kwargs
        self.x_eval = x_test.reshape((len(x_test),) + tuple(model.input_shape[1:]))
        self.y_test, self.max_epochs = y_test, max_epochs
        self.spent, self.curve = 0.0, []

    def done(self, target) -> bool:
        return len(self.curve) >= self.max_epochs or (bool(self.curve) and self.curve[-1][2] >= target)

    def step(self) -> None:
        epoch = len(self.curve)
        start = time.perf_counter()
        self.model.fit(self.x, self.y, epochs=epoch + 1, initial_epoch=epoch, verbose=0, **self.fit_kwargs)
        self.spent += time.perf_counter() - start
        acc = float(np.mean(self.model.predict(self.x_eval, batch_size=1000, verbose=0).argmax(1) == self.y_test))
        self.curve.append((epoch + 1, self.spent, acc))
        print(f"  {self.name:9} epoch {epoch + 1:2d}: {self.spent:7.1f} s of fit(), test accuracy {acc:.4f}", flush=True)


def race(runners, target):
    """Alternate one epoch of each runner, so that a busy machine slows both alike."""
    while not all(r.done(target) for r in runners):
        for r in runners:
            if not r.done(target):
                r.step()


def first_reach(curve, target):
    return next((s for _, s, acc in curve if acc >= target), None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--epochs", type=int, default=course_config.assignment(REFERENCE).parameters["quick"]["EPOCHS"],
                        help="the reference's EPOCHS (default: the quick profile's, %(default)s)")
    parser.add_argument("--max-epochs", type=int, default=15, help="most epochs the anchor may take")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=course_config.COURSE_DIR / "docs" / "time_to_accuracy.md",
                        help="where to record the result (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that it runs: 1 epoch each on 3,000 images, 1,000 test images; writes nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.epochs, args.max_epochs, args.out = 1, 1, None

    model, x, y, fit_kwargs, ns = reference(args.epochs, args.seed)
    (x_train, y_train), (x_test, y_test) = ns["load_mnist"]()
    x_test = x_test.astype("float32") / course_config.MNIST_PIXEL_SCALE
    if args.smoke:
        x, y, x_train, y_train, x_test, y_test = x[:3000], y[:3000], x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
    print(f"machine: {describe(keras=True)}")
    print(f"reference ({REFERENCE} solution): {model.count_params():,} parameters, "
          f"{len(x):,} training images, EPOCHS = {args.epochs}, fit arguments {fit_kwargs}")
    a_model, ax, ay, a_kwargs = anchor(x_train, y_train, args.seed)
    print(f"anchor (keras-io Simple MNIST convnet): {a_model.count_params():,} parameters, {len(ax):,} training images")
    print("epochs alternate between the two models")
    ref = Runner("reference", model, x, y, fit_kwargs, x_test, y_test, args.epochs)
    anc = Runner("anchor", a_model, ax, ay, a_kwargs, x_test, y_test, args.max_epochs)
    race([ref, anc], args.target)
    ref_curve, anc_curve = ref.curve, anc.curve
    r, a = first_reach(ref_curve, args.target), first_reach(anc_curve, args.target)
    print(f"\ntime to {args.target:.1%} test accuracy (sum of fit() calls):")
    print(f"  reference: {'%.1f s' % r if r is not None else 'not reached in %d epochs' % args.epochs}")
    print(f"  anchor:    {'%.1f s' % a if a is not None else 'not reached in %d epochs' % args.max_epochs}")
    ratio = f"{r / a:.2f}" if r is not None and a is not None else "n/a"
    print(f"  ratio reference/anchor: {ratio} (goal <= 0.33)")
    if args.out:
        write_report(args, ref_curve, anc_curve, r, a, ratio, model.count_params(), a_model.count_params(), fit_kwargs)
        print(f"wrote {args.out}")
    return 0


def write_report(args, ref_curve, anc_curve, r, a, ratio, ref_params, anc_params, fit_kwargs) -> None:
    import datetime as dt

    fmt = lambda t: f"{t:.1f} s" if t is not None else "not reached"  # noqa: E731
    lines = [
        "# Time to 99.0 % MNIST test accuracy",
        "",
        "Written by `bench/time_to_accuracy.py`. Both models train one epoch per `fit()` call; the time",
        "is the sum of the whole `fit()` calls, evaluation on the 10,000 test images excluded.",
        "",
        f"Machine: {describe(keras=True)}  ",
        f"Date: {dt.date.today().isoformat()}, seed {args.seed}",
        "",
        "| model | parameters | recipe | time to {:.1%} | ratio to anchor |".format(args.target),
        "|---|---|---|---|---|",
        f"| reference (`solutions/{REFERENCE}`) | {ref_params:,} | EPOCHS = {args.epochs}, {fit_kwargs} | {fmt(r)} | {ratio} |",
        f"| anchor (keras-io Simple MNIST convnet) | {anc_params:,} | Adam, batch 128 | {fmt(a)} | 1 |",
        "",
        "Goal: ratio <= 0.33 on 2 CPU cores.",
        "",
        "| model | epoch | seconds of fit() | test accuracy |",
        "|---|---|---|---|",
    ]
    lines += [f"| reference | {e} | {t:.1f} | {acc:.4f} |" for e, t, acc in ref_curve]
    lines += [f"| anchor | {e} | {t:.1f} | {acc:.4f} |" for e, t, acc in anc_curve]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
