"""Measure the similarity report: no flagged pair in an honest class, every kind of copy flagged, and its time.

A class of honest students trains the mnist_dense reference network from the same code on the same
images, each with a seed of its own (the hardest case for a detector: same code, same data). Copier i
takes honest student i's model and hands it in as it is, re-saved as ``.h5``, with noise added to its
weights, trained one more epoch on other images, or rebuilt with renamed layers; one more student hands
in a model saved by Keras 2.15 as ``.h5`` (tests/model_files), which a copier re-saves with this Keras. Everyone is graded by the real batch
(``autograder.batch.grade``), which writes the report; the figures are what it flagged. Then the time to
compare a class of 500 students (about 125,000 pairs), made from the honest students' kept evidence.

    python bench/copied_models.py            # 20 honest students, 6 copiers: about 3 minutes on 2 cores
    python bench/copied_models.py --smoke    # 6 honest students, small slices
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from machine import describe as describe_machine  # noqa: E402

import course_config  # noqa: E402
from autograder import similarity  # noqa: E402

ASSIGNMENT = "mnist_dense"
FILE = "mnist_dense.keras"
# A model saved by Keras 2.15 (TensorFlow 2.15) as .h5: its author hands it in, a copier re-saves it with this Keras.
KERAS2_FILE = ROOT / "tests" / "model_files" / "keras2.15-tf2.15__dense.h5"
COPIES = ("identical file", "re-saved as .h5", "re-saved by another Keras version", "weights with noise",
          "trained one more epoch", "renamed layers")


def reference_model(keras, seed: int):
    """The mnist_dense solution's network (a hidden Dense layer with dropout), seeded."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.2),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def place(submitted: Path, student: str) -> Path:
    folder = submitted / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def make_class(submitted: Path, honest: int, images: int, epochs: int) -> dict[str, tuple[str, str]]:
    """Write the honest students' and the copiers' submissions (copier i copies honest student i); {copier:
    (what it did, whom it copied)}."""
    import keras

    from autograder.course_data import load_mnist

    (x, y), _ = load_mnist(parts=("train",))
    x = x.astype("float32") / 255.0
    for seed in range(honest):
        model = reference_model(keras, seed)
        model.fit(x[:images], y[:images], epochs=epochs, batch_size=64, verbose=0)
        model.save(place(submitted, f"honest_{seed:02d}") / FILE)
    copiers = {}
    for i, kind in enumerate(COPIES):
        student, copied = f"copier_{i}", f"honest_{i % honest:02d}"
        source = submitted / copied / ASSIGNMENT / FILE
        if kind == "re-saved by another Keras version":  # its author saved it with Keras 2.15, as .h5
            copied = "keras2_author"
            source = place(submitted, copied) / "mnist_dense.h5"
            shutil.copyfile(KERAS2_FILE, source)
        target = place(submitted, student) / FILE
        if kind == "identical file":
            shutil.copyfile(source, target)
        elif kind == "re-saved as .h5":
            keras.saving.load_model(source).save(target.with_suffix(".h5"))
        elif kind == "re-saved by another Keras version":
            keras.saving.load_model(source).save(target)
            kind = f"re-saved by Keras {keras.__version__} (.keras) from Keras 2.15's .h5"
        elif kind == "weights with noise":
            model = keras.saving.load_model(source)
            rng = np.random.default_rng(1)
            model.set_weights([w + rng.normal(0, 0.05 * (w.std() or 1.0), w.shape).astype(w.dtype)
                               for w in model.get_weights()])
            model.save(target)
        elif kind == "trained one more epoch":
            model = keras.saving.load_model(source)
            keras.utils.set_random_seed(99)
            model.fit(x[images:2 * images], y[images:2 * images], epochs=1, batch_size=64, verbose=0)
            model.save(target)
        elif kind == "renamed layers":
            original = keras.saving.load_model(source)
            model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(name="my_flatten"),
                                      keras.layers.Dense(128, activation="relu", name="my_hidden"),
                                      keras.layers.Dropout(0.2, name="my_dropout"),
                                      keras.layers.Dense(10, activation="softmax", name="my_output")])
            model.set_weights(original.get_weights())
            model.save(target)
        copiers[student] = (kind, copied)
    return copiers


def synthetic_class(evidence: dict, n: int, seed: int = 0) -> dict:
    """``n`` students' evidence made from the honest ones: answers with 1 % changed, parameters with noise."""
    rng = np.random.default_rng(seed)
    base = list(evidence.values())
    out = {}
    for i in range(n):
        models = {}
        for model, e in base[i % len(base)].items():
            answers = e["answers"].copy()
            flip = rng.random(len(answers)) < 0.01
            answers[flip] = rng.integers(0, 10, int(flip.sum()))
            sample = e["sample"] + rng.normal(0, 1.0, e["sample"].shape).astype(np.float32) * e["sample"].std()
            models[model] = {**e, "answers": answers, "sample": sample, "digest": np.array(str(i))}
        out[f"s{i:03d}"] = models
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="6 honest students on small slices; writes nothing")
    parser.add_argument("--honest", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "similarity.md")
    args = parser.parse_args(argv)
    honest, images, epochs, big = (6, 2000, 1, 100) if args.smoke else (args.honest, 20_000, 2, 500)
    from autograder import batch
    from autograder.datasets.tasks import load_task

    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as tmp:
        submitted, out = Path(tmp) / "submitted", Path(tmp) / "out"
        start = time.monotonic()
        copiers = make_class(submitted, honest, images, epochs)
        trained = time.monotonic() - start
        batch.grade(ASSIGNMENT, submitted, out, profile_name="full", workers=2, log=open("/dev/null", "w"))
        report = json.loads((out / "similarity.json").read_text())[ASSIGNMENT]
        evidence = similarity.class_evidence(out, ASSIGNMENT, [f"honest_{s:02d}" for s in range(honest)])
        task = load_task(course_config.assignment(ASSIGNMENT), course_config.profile("full"))
        labels = task.labels
        task.close()
    flagged = [tuple(p["students"]) for p in report["flagged"]]
    false = [p for p in flagged if all(s.startswith("honest") for s in p)]
    pairs = honest * (honest - 1) // 2
    print(f"honest class: {honest} students, {pairs} pairs, {len(false)} flagged (trained in {trained:.0f} s)")
    medians = ", ".join(f"{s['signal']} {s['median']:.3f}" for s in report["models"]["model"]["signals"]
                        if s.get("judged"))
    print(f"class medians: {medians}")
    lines = []
    for student, (kind, copied) in copiers.items():
        pair = next((p for p in report["flagged"] if set(p["students"]) == {copied, student}), None)
        signals = ", ".join(f"{s['name']} {s['value']:.3f}" + (f" (z {s['z']:.0f})" if s.get("z") is not None else "")
                            for s in (pair or {}).get("signals", []) if s["flagged"]) or "-"
        line = f"{kind}: {'flagged' if pair else 'NOT flagged'}; {signals}"
        print(line)
        lines.append((kind, bool(pair), signals))
    many = synthetic_class(evidence, big)
    start = time.process_time()
    result = similarity.compare(many, labels, {"model": "classes"})
    cpu = time.process_time() - start
    n_pairs = big * (big - 1) // 2
    print(f"{big} students ({n_pairs:,} pairs): compared in {cpu:.1f} s CPU ({len(result['pairs']):,} pairs measured)")
    if args.smoke:
        return 0
    text = [
        "# Similar models: what the report flags",
        "",
        f"Measured by `python bench/copied_models.py` on {describe_machine()}.",
        "",
        f"An honest class of {honest} students trains the mnist_dense reference network (Dense(128) with dropout) "
        f"from the same code on the same {images:,} MNIST images, {epochs} epochs, each with a seed of its own; "
        "copier i takes honest student i's model, and one more student hands in a model that Keras 2.15 saved as "
        "`.h5` (tests/model_files), which a copier loads and saves again with this Keras. Everyone is graded by "
        "the batch, which writes the report.",
        "",
        f"- Honest pairs flagged: **{len(false)} of {pairs}**.",
        f"- The class's medians (all {report['pairs']:,} pairs): {medians}.",
        "",
        "| copy | flagged | signals that flag it (value, robust z against the class) |",
        "|---|---|---|",
        *[f"| {kind} | {'yes' if hit else '**no**'} | {signals} |" for kind, hit, signals in lines],
        "",
        f"Comparing a class of {big} students ({n_pairs:,} pairs; evidence made from the honest students' "
        f"with 1 % of answers changed and noise on the parameters): **{cpu:.1f} s** CPU.",
        "",
        "Every signal's class distribution (median, pairs) is in the report itself (`similarity.md`).",
    ]
    args.out.write_text("\n".join(text) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
