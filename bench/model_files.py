"""Model files from many Keras versions, graded through the kit's real path.

Students save their models with whatever Keras their machine has: Keras 3.0 to 3.15 on the
TensorFlow, JAX or torch backend, or Keras 2 (``tf.keras`` of TensorFlow 2.15, ``tf_keras``). For each
*producer* (one pip venv under ``~/.cache/ml4phys-model-files/venvs/<name>``, made on first use and
reused) this bench:

1. prepares the data (MNIST training slice and the 10,000 test images without labels; SUSY training
   rows from the real 10k events and the quick profile's hidden test events without labels);
2. runs ``bench/model_files_producer.py`` in the venv: tiny models of many spellings (Sequential,
   Functional, nested, Activation layers, tf.nn activations, CNNs, augmentation, Normalization, mixed
   precision), trained briefly, saved as ``.keras`` (some also ``.h5``), with the model's own outputs
   on the test inputs;
3. grades every file in the kit venv with ``autograder.grading.submission.grade_submission`` (saved-model
   mode; MNIST on the ``full`` profile, SUSY on ``quick``) and compares the grader's figure with the
   producer's own figure on the same labels (accuracy on the MNIST test images, ROC AUC on the SUSY
   quick test events).

Prints one row per file and a summary per producer, and writes them to ``docs/model_files.md``.

    python bench/model_files.py                        # every producer (venvs are built on first use)
    python bench/model_files.py --producers keras2.15-tf2.15,keras3.15.1-torch
    python bench/model_files.py --smoke                # the kit venv only, 2 variants (in make test)
    python bench/model_files.py --fixtures tests/model_files   # also write the committed fixture set
    python bench/model_files.py --fixtures tests/model_files --no-grade   # only (re)write the fixtures
    python bench/model_files.py --kit /tmp/kit_head   # grade with another copy of the kit (git archive HEAD)
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
# --kit DIR grades with another checkout of the kit (e.g. `git archive HEAD` unpacked): re-exec'd with this set.
KIT_DIR = Path(os.environ.get("MODEL_FILES_KIT") or ROOT).resolve()
sys.path.insert(0, str(KIT_DIR))

import numpy as np  # noqa: E402

import course_config  # noqa: E402

HOME = Path.home() / ".cache" / "ml4phys-model-files"
VENVS = HOME / "venvs"
PRODUCER_SCRIPT = Path(__file__).resolve().parent / "model_files_producer.py"
PYTHON = "/root/.pyenv/versions/3.11.7/bin/python"
KIT_PYTHON = ROOT / ".venv" / "bin" / "python"
DOCS = ROOT / "docs" / "model_files.md"
TORCH_WHEEL = "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
TOLERANCE = 0.0005
MNIST_TRAIN = 6000
SUSY_TRAIN = 8000
SMOKE_VARIANTS = ("dense", "susy_dnn")


@dataclass(frozen=True)
class ProducerSpec:
    name: str
    requirements: tuple[str, ...]  # pip requirements; () for the kit venv itself
    backend: str = "tensorflow"
    keras_module: str = "auto"

    @property
    def python(self) -> Path:
        return KIT_PYTHON if not self.requirements else VENVS / self.name / "bin" / "python"


def _torch_requirement() -> str:
    return TORCH_WHEEL if Path(TORCH_WHEEL).exists() else "torch==2.13.0"


PRODUCERS = (
    ProducerSpec("keras3.0.5-jax", ("keras==3.0.5", "jax[cpu]==0.4.23", "numpy<2", "packaging"), "jax"),
    ProducerSpec("keras3.3.3-jax", ("keras==3.3.3", "jax[cpu]==0.4.28", "numpy<2", "packaging"), "jax"),
    ProducerSpec("keras3.5.0-jax", ("keras==3.5.0", "jax[cpu]==0.4.31", "numpy<2"), "jax"),
    ProducerSpec("keras3.4.1-tf2.17", ("keras==3.4.1", "tensorflow-cpu==2.17.*", "numpy<2")),
    ProducerSpec("keras3.6.0-tf2.18", ("keras==3.6.0", "tensorflow-cpu==2.18.*")),
    ProducerSpec("keras3.8.0-tf2.18", ("keras==3.8.0", "tensorflow-cpu==2.18.*")),
    ProducerSpec("keras3.10.0-tf2.19", ("keras==3.10.0", "tensorflow-cpu==2.19.*")),
    ProducerSpec("keras3.12-tf2.20", ("keras==3.12.*", "tensorflow-cpu==2.20.*")),
    ProducerSpec("keras3.13.2-tf2.20", ("keras==3.13.2", "tensorflow-cpu==2.20.*")),
    ProducerSpec("kit-keras3.15.1-tf", ()),
    ProducerSpec("keras3.15.1-jax", ("keras==3.15.1", "jax[cpu]"), "jax"),
    ProducerSpec("keras3.15.1-torch", ("keras==3.15.1", _torch_requirement()), "torch"),
    ProducerSpec("keras2.15-tf2.15", ("tensorflow-cpu==2.15.*",)),
    ProducerSpec("tf_keras2.20-tf2.20", ("tf_keras==2.20.*", "tensorflow-cpu==2.20.*"), keras_module="tf_keras"),
    ProducerSpec("tf_keras2.21-tf2.21", ("tf_keras==2.21.*", "tensorflow-cpu==2.21.*"), keras_module="tf_keras"),
)
BY_NAME = {p.name: p for p in PRODUCERS}

# The committed fixture set (--fixtures): (producer, variant file) -> the file name in the folder.
FIXTURES = (
    ("keras3.0.5-jax", "augment.keras"), ("keras3.0.5-jax", "dense.keras"),
    ("keras3.4.1-tf2.17", "augment.keras"),
    ("keras3.10.0-tf2.19", "cnn_same_bn_gap.keras"),
    ("keras3.15.1-torch", "cnn.keras"), ("keras3.15.1-jax", "dense_functional.keras"),
    ("kit-keras3.15.1-tf", "mixed_float16_cnn.keras"), ("kit-keras3.15.1-tf", "mixed_bfloat16_dense.keras"),
    ("keras2.15-tf2.15", "dense_functional.keras"), ("keras2.15-tf2.15", "cnn_same_bn_gap.keras"),
    ("keras2.15-tf2.15", "susy_dnn.keras"), ("keras2.15-tf2.15", "dense.h5"),
    ("keras2.15-tf2.15", "mixed_float16_dense.keras"),
    ("tf_keras2.21-tf2.21", "augment.keras"), ("tf_keras2.21-tf2.21", "dense_nested.keras"),
    ("kit-keras3.15.1-tf", "dense_activation_layers.keras"), ("kit-keras3.15.1-tf", "dense_relu_softmax_layers.keras"),
    ("kit-keras3.15.1-tf", "dense_tf_softmax.keras"), ("kit-keras3.15.1-tf", "dense.h5"),
)
FIXTURE_MAX_BYTES = 60_000  # Keras 2 files carry about 32 KB of HDF5 overhead: 42-55 KB even for these tiny models


# ------------------------------------------------------------------------------------------------
# Producer venvs
# ------------------------------------------------------------------------------------------------
def ensure_venv(spec: ProducerSpec) -> str | None:
    """Make (or reuse) the producer's venv; return None when ready, else why it is not."""
    if not spec.requirements:
        return None
    folder = VENVS / spec.name
    marker = folder / ".ml4phys-ok"
    if marker.exists():
        return None
    log = VENVS / f"{spec.name}.log"
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    steps = [[PYTHON, "-m", "venv", str(folder)],
             [str(folder / "bin" / "pip"), "install", "-q", "--upgrade", "pip"],
             [str(folder / "bin" / "pip"), "install", *spec.requirements]]
    with open(log, "w") as f:
        for step in steps:
            res = subprocess.run(step, stdout=f, stderr=subprocess.STDOUT)
            if res.returncode != 0:
                tail = log.read_text().strip().splitlines()[-3:]
                return f"pip install {' '.join(spec.requirements)} failed: " + " | ".join(tail)[:400]
    marker.touch()
    return None


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------
@dataclass
class Truth:
    """What the bench keeps: the labels the producers never see."""

    mnist_y_test: np.ndarray
    susy_y_test: np.ndarray


def prepare_data(folder: Path) -> Truth:
    """Write the producers' inputs to ``folder``; return the test labels."""
    from autograder.datasets.tasks import SusyTask

    folder.mkdir(parents=True, exist_ok=True)
    data_dir = Path(os.environ.get("COURSE_DATA_DIR", "/work/shared/data"))
    with np.load(data_dir / "mnist.npz") as z:
        x_train, y_train, x_test, y_test = z["x_train"], z["y_train"], z["x_test"], z["y_test"]
    with gzip.open(data_dir / "susy_real_10k.csv.gz", "rt") as f:
        rows = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.float64, max_rows=SUSY_TRAIN)
    susy = SusyTask(course_config.profile("quick"))
    arrays = {
        "mnist_x_train": x_train[:MNIST_TRAIN].astype(np.uint8), "mnist_y_train": y_train[:MNIST_TRAIN],
        "mnist_x_test": x_test.astype(np.uint8),
        "susy_x_train": rows[:, 1:].astype(np.float32), "susy_y_train": rows[:, 0].astype(np.float32),
        "susy_x_test": susy.prediction_inputs(),
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=False)
    return Truth(y_test.astype(np.int64), np.asarray(susy.labels))


def run_producer(spec: ProducerSpec, data: Path, out: Path, variants: tuple[str, ...] | None,
                 n_train: int) -> tuple[float, str | None]:
    """Run the producer script in its venv; return (seconds, error or None)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [str(spec.python), str(PRODUCER_SCRIPT), "--data", str(data), "--out", str(out),
            "--keras-module", spec.keras_module, "--n-train", str(n_train)]
    if variants:
        argv += ["--variants", ",".join(variants)]
    env = {**os.environ, "KERAS_BACKEND": spec.backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONNOUSERSITE": "1",
           "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    start = time.monotonic()
    with open(out / "producer.log", "w") as log:
        res = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out)
    seconds = time.monotonic() - start
    if res.returncode != 0 or not (out / "done").exists():
        tail = (out / "producer.log").read_text(errors="replace").strip().splitlines()[-3:]
        return seconds, f"producer exited {res.returncode}: " + " | ".join(tail)[:400]
    return seconds, None


def records_of(out: Path) -> list[dict]:
    path = out / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


# ------------------------------------------------------------------------------------------------
# Grading (in worker processes: grade_submission redirects stdout and runs pytest)
# ------------------------------------------------------------------------------------------------
_TASKS: dict = {}


def _task(assignment, profile):
    key = (assignment.name, profile.name)
    if key not in _TASKS:
        from autograder.datasets.tasks import load_task

        _TASKS[key] = load_task(assignment, profile)
    return _TASKS[key]


def metric_check(assignment, spec_name: str, profile: str) -> str | None:
    for check_id in assignment.thresholds.get(profile, {}):
        if assignment.model_of(check_id).name == spec_name and assignment.check(check_id).test_set == "test":
            return check_id
    return None


def grade_file(path: str, assignment_name: str, model_name: str) -> dict:
    """Grade one model file as a submission of its own; the figure, engine, timing and failed checks."""
    from autograder.grading.submission import grade_submission

    assignment = course_config.assignment(assignment_name)
    profile = course_config.profile("quick" if assignment.dataset == "susy" else "full")
    spec = next(s for s in assignment.models if s.name == model_name)
    target = spec.file if path.endswith(".keras") else Path(spec.file).stem + Path(path).suffix
    with tempfile.TemporaryDirectory(prefix="model-files-") as tmp:
        folder = Path(tmp) / "student" / assignment.name
        folder.mkdir(parents=True)
        shutil.copyfile(path, folder / target)
        start = time.monotonic()
        try:
            result = grade_submission("bench", folder, assignment, _task(assignment, profile), profile=profile,
                                      execute=False)
        except Exception as exc:  # noqa: BLE001  (a grader crash is a finding)
            return {"figure": None, "engine": None, "crashed": True,
                    "message": f"grader raised {type(exc).__name__}: {exc}", "seconds": time.monotonic() - start}
    check_id = metric_check(assignment, model_name, profile.name)
    figure = result.extra.get("metrics", {}).get(check_id)
    model = result.extra.get("models", {}).get(model_name, {})
    mine = [c for c in result.checks if model_name == "model" or c.id.startswith(model_name)]
    failed = [c for c in mine if c.status != "passed"]
    # The first failing check whose message is not just "below the threshold" of a tiny model.
    message = ""
    measured = result.extra.get("metrics", {})
    for c in failed:
        if c.id in measured:  # a metric threshold: these models are tiny on purpose
            continue
        message = f"{c.id}: {c.output.strip()}"
        break
    if figure is None and not message:
        message = (result.output or "").strip()
    return {
        "figure": figure, "engine": model.get("engine"), "message": " ".join(message.split()),
        "prediction_s": (model.get("prediction") or {}).get("seconds"), "seconds": result.seconds,
        "failed_checks": [c.id for c in failed], "check": check_id,
    }


def own_figure(rec: dict, out: Path, truth: Truth) -> float:
    from autograder.datasets.tasks import task_class
    from autograder.model_checks import measure

    outputs = np.load(out / rec["outputs"])
    metric = task_class(course_config.assignment(rec["assignment"])).metric_spec.as_facts()
    labels = truth.susy_y_test if rec["assignment"] == "susy" else truth.mnist_y_test
    return round(measure(metric, outputs, labels), 6)


def engine_text(engine) -> str:
    if engine is None:
        return "-"
    if isinstance(engine, dict):
        return str(engine.get("name") or engine.get("engine") or engine)
    return str(engine)


# ------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------
@dataclass
class Row:
    producer: str
    variant: str
    file: str
    grader: float | None = None
    own: float | None = None
    engine: str = "-"
    message: str = ""
    prediction_s: float | None = None
    skipped: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def outcome(self) -> str:
        if self.skipped:
            return "skipped"
        if self.extra.get("crashed"):
            return "crashed"
        if self.grader is None:
            return "refused" if self.message else "wrong"
        return "ok" if self.own is not None and abs(self.grader - self.own) <= TOLERANCE else "wrong"


def fmt(x, digits=4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[Row]) -> list[str]:
    lines = ["| producer | variant | file | grader | producer's | diff | engine | pred s | outcome | first failing check |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        diff = None if r.grader is None or r.own is None else r.grader - r.own
        msg = r.message if len(r.message) <= 160 else r.message[:157] + "..."
        msg = msg.replace("|", "\\|")
        lines.append(f"| {r.producer} | {r.variant} | {r.file} | {fmt(r.grader)} | {fmt(r.own)} | "
                     f"{'-' if diff is None else f'{diff:+.4f}'} | {r.engine} | {fmt(r.prediction_s, 2)} | "
                     f"{r.outcome} | {msg} |")
    return lines


def summary(rows: list[Row], producer_notes: dict[str, str]) -> list[str]:
    lines = []
    names = list(dict.fromkeys([r.producer for r in rows] + list(producer_notes)))
    totals = [0, 0, 0, 0, 0, 0]
    for name in names:
        mine = [r for r in rows if r.producer == name and not r.skipped]
        skipped = sum(r.skipped for r in rows if r.producer == name)
        counts = [len(mine), sum(r.outcome == "ok" for r in mine), sum(r.outcome == "refused" for r in mine),
                  sum(r.outcome == "wrong" for r in mine), skipped, sum(r.outcome == "crashed" for r in mine)]
        totals = [a + b for a, b in zip(totals, counts)]
        note = f" ({producer_notes[name]})" if name in producer_notes else ""
        lines.append(f"{name}: {counts[0]} files, {counts[1]} graded within {TOLERANCE}, {counts[2]} refused with "
                     f"a message, {counts[3]} wrong"
                     + (f", {counts[5]} crashed the grader" if counts[5] else "")
                     + f"; {counts[4]} variants skipped by the producer{note}")
    lines.append(f"TOTAL: {totals[0]} files, {totals[1]} graded within {TOLERANCE}, {totals[2]} refused with a "
                 f"message, {totals[3]} wrong" + (f", {totals[5]} crashed the grader" if totals[5] else "")
                 + f"; {totals[4]} variants skipped by the producer")
    return lines


def kit_commit() -> str:
    try:
        res = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"], capture_output=True, text=True)
        head = res.stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "autograder", "course_config.py"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""
    if KIT_DIR != ROOT:
        return f" (checkout HEAD is {head})" if head else ""
    return f" (commit {head}{', with uncommitted grader changes' if dirty else ''})" if head else ""


def producer_versions(out: Path) -> dict | None:
    done = out / "done"
    return json.loads(done.read_text()) if done.exists() else None


def write_docs(path: Path, rows, summary_lines, versions: dict, skipped: list[Row], seconds: float, argv) -> None:
    lines = [
        "# Model files from many Keras versions",
        "",
        "Written by `bench/model_files.py`. Tiny models of many spellings (Sequential, Functional, nested,",
        "Activation / ReLU / Softmax layers, `tf.nn` activations, CNNs, augmentation layers, Normalization,",
        "mixed precision) are made in one pip venv per *producer* (a Keras version and backend, or Keras 2),",
        "trained for one epoch on 6,000 MNIST images (SUSY: 8,000 real events), saved as `.keras` (some also",
        "`.h5`), and graded through the kit's real path (`grade_submission`, saved-model mode; MNIST on the",
        "`full` profile's 10,000 test images, SUSY on the `quick` profile's hidden events). *grader* is the",
        "grader's metric, *producer's* the same metric computed from the producer's own `model.predict`",
        f"outputs and the same labels; *ok* means they agree within {TOLERANCE}. *pred s* is the grader's",
        "recorded prediction time. *first failing check* is the first failed check's message other than the",
        "metric threshold (these models are deliberately tiny, so metric thresholds fail).",
        "",
        "Run it (producer venvs are built under `~/.cache/ml4phys-model-files/venvs/` on first use, then reused;",
        "files already made in `~/.cache/ml4phys-model-files/work/` are reused and graded again; every row is",
        "also written to `~/.cache/ml4phys-model-files/work/results.json`):",
        "",
        "```sh",
        "COURSE_DATA_DIR=/path/to/data .venv/bin/python bench/model_files.py                 # every producer",
        "COURSE_DATA_DIR=/path/to/data .venv/bin/python bench/model_files.py --producers keras2.15-tf2.15",
        "COURSE_DATA_DIR=/path/to/data .venv/bin/python bench/model_files.py --reproduce     # make the files again",
        "COURSE_DATA_DIR=/path/to/data .venv/bin/python bench/model_files.py --kit /tmp/kit   # grade with another kit copy",
        "COURSE_DATA_DIR=/path/to/data .venv/bin/python bench/model_files.py --smoke         # kit venv only, 2 variants",
        "```",
        "",
        f"Date: {dt.date.today().isoformat()}; this run: `{' '.join(argv)}`, {seconds:.0f} s; graded with the kit "
        f"in `{KIT_DIR}`{kit_commit()}.",
        "",
        "## Summary",
        "",
        *[f"- {line}" for line in summary_lines],
        "",
        "## Producers",
        "",
        "| producer | python | keras | backend | tensorflow | tf_keras | jax | torch | numpy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in versions.items():
        if isinstance(v, str):
            lines.append(f"| {name} | {v} | | | | | | | |")
            continue
        lines.append(f"| {name} | {v['python']} | {v['keras']} ({v['keras_module']}) | {v['backend']} | "
                     f"{v.get('tensorflow') or '-'} | {v.get('tf_keras') or '-'} | {v.get('jax') or '-'} | "
                     f"{v.get('torch') or '-'} | {v['numpy']} |")
    lines += ["", "## Files", "", *table(rows), ""]
    if skipped:
        lines += ["## Variants the producers could not make", "", "| producer | variant | reason |", "|---|---|---|"]
        lines += [f"| {r.producer} | {r.variant} | {r.message[:200].replace('|', chr(92) + '|')} |" for r in skipped]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------
def write_fixtures(folder: Path, work: Path, truth: Truth, argv) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    entries, notes = [], []
    for producer, file in FIXTURES:
        out = work / "producers" / producer
        rec = next((r for r in records_of(out) if r.get("file") == file and r["status"] == "ok"), None)
        if rec is None:
            notes.append(f"{producer} {file}: not produced")
            continue
        src = out / file
        if src.stat().st_size > FIXTURE_MAX_BYTES:
            notes.append(f"{producer} {file}: {src.stat().st_size} bytes, over {FIXTURE_MAX_BYTES}")
            continue
        name = f"{producer}__{file}"
        shutil.copyfile(src, folder / name)
        outputs = np.load(out / rec["outputs"])
        metric = "roc_auc" if rec["assignment"] == "susy" else "accuracy"
        entries.append({
            "file": name, "assignment": rec["assignment"], "model": rec["model"], "variant": rec["variant"],
            "producer": producer, "input_shape": rec["input_shape"], "versions": rec["versions"],
            "metric": metric, "value": own_figure(rec, out, truth),
            "test_inputs": "MNIST test images / 255 (the first 3)" if metric == "accuracy"
            else "SUSY quick-profile hidden events (the first 3)",
            "first_outputs": np.round(outputs[:3].astype(np.float64), 6).tolist(),
            "bytes": (folder / name).stat().st_size,
        })
    head = {"made_by": " ".join(argv), "date": dt.date.today().isoformat(),
            "about": "tiny trained Keras models saved by many Keras versions; value: the producer's own metric "
                     "on the grader's data (accuracy: the 10,000 MNIST test images; roc_auc: the susy quick "
                     "profile's hidden events); first_outputs: its model.predict rows for the first 3 inputs"}
    text = json.dumps(head, indent=1)[:-2] + ',\n "files": [\n' + ",\n".join("  " + json.dumps(e) for e in entries)
    (folder / "manifest.json").write_text(text + "\n ]\n}\n")
    json.loads((folder / "manifest.json").read_text())
    return notes


# ------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="producers: " + ", ".join(BY_NAME))
    parser.add_argument("--producers", help="comma-separated producer names (default: all)")
    parser.add_argument("--smoke", action="store_true",
                        help="only the kit venv as producer, 2 variants, few images; no venvs are made")
    parser.add_argument("--fixtures", type=Path, help="also write the committed fixture set to this folder")
    parser.add_argument("--out", type=Path, help=f"work folder (default {HOME}/work, or {HOME}/smoke)")
    parser.add_argument("--reproduce", action="store_true",
                        help="make the model files again even where a producer's files are already in --out")
    parser.add_argument("--no-grade", action="store_true",
                        help="make (or reuse) the files and write --fixtures, but grade nothing and write no docs")
    parser.add_argument("--workers", type=int, default=2, help="producer and grading processes (default 2)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="markdown report (not written with --smoke)")
    parser.add_argument("--kit", type=Path,
                        help="grade with the kit in this folder instead of this checkout (e.g. `git archive HEAD` "
                             "unpacked), to compare a grader change with the committed one")
    args = parser.parse_args(argv)
    if args.kit and Path(args.kit).resolve() != KIT_DIR:
        os.environ["MODEL_FILES_KIT"] = str(Path(args.kit).resolve())
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()),
                                  *(sys.argv[1:] if argv is None else argv)])
    argv_shown = ["bench/model_files.py", *(sys.argv[1:] if argv is None else argv)]
    t0 = time.monotonic()

    if args.smoke:
        specs, variants, n_train = [BY_NAME["kit-keras3.15.1-tf"]], SMOKE_VARIANTS, 500
        work = args.out or HOME / "smoke"
    else:
        names = args.producers.split(",") if args.producers else list(BY_NAME)
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown producer(s) {unknown}; known: {', '.join(BY_NAME)}")
        specs, variants, n_train = [BY_NAME[n] for n in names], None, MNIST_TRAIN
        work = args.out or HOME / "work"
    work.mkdir(parents=True, exist_ok=True)

    truth = prepare_data(work / "data")
    print(f"data in {work / 'data'} ({time.monotonic() - t0:.1f} s)", flush=True)

    notes: dict[str, str] = {}

    def make(spec: ProducerSpec):
        out = work / "producers" / spec.name
        if not args.smoke and not args.reproduce and (out / "done").exists():
            return spec, 0.0, None, True
        error = None if args.smoke else ensure_venv(spec)
        if error:
            return spec, 0.0, error, False
        seconds, error = run_producer(spec, work / "data", out, variants, n_train)
        return spec, seconds, error, False

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for spec, seconds, error, reused in pool.map(make, specs):
            state = "reused" if reused else (f"FAILED: {error}" if error else f"{seconds:.0f} s")
            print(f"producer {spec.name}: {state}", flush=True)
            if error:
                notes[spec.name] = error

    rows: list[Row] = []
    jobs = []
    versions: dict = {}
    for spec in specs:
        out = work / "producers" / spec.name
        v = producer_versions(out)
        versions[spec.name] = v if v else notes.get(spec.name, "no files")
        for rec in records_of(out):
            if rec["status"] != "ok":
                rows.append(Row(spec.name, rec["variant"], rec.get("file", "-"), skipped=True,
                                message=rec.get("reason", "")))
                continue
            row = Row(spec.name, rec["variant"], rec["file"], own=own_figure(rec, out, truth))
            rows.append(row)
            jobs.append((row, str(out / rec["file"]), rec["assignment"], rec["model"]))

    if args.no_grade:
        if args.fixtures:
            problems = write_fixtures(args.fixtures, work, truth, argv_shown)
            print(f"wrote {args.fixtures}" + ("; " + "; ".join(problems) if problems else ""))
        print(f"{len(jobs)} files made, none graded (--no-grade); {time.monotonic() - t0:.0f} s")
        return 0
    print(f"grading {len(jobs)} files ...", flush=True)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = [(row, pool.submit(grade_file, path, a, m)) for row, path, a, m in jobs]
        for row, fut in futures:
            try:
                g = fut.result()
            except Exception as exc:  # noqa: BLE001
                g = {"figure": None, "engine": None, "crashed": True,
                     "message": f"grader raised {type(exc).__name__}: {exc}"}
            row.grader, row.engine, row.message = g["figure"], engine_text(g["engine"]), g["message"]
            row.prediction_s, row.extra = g.get("prediction_s"), g
            print(f"  {row.producer:22s} {row.file:34s} {row.outcome:8s} {fmt(row.grader)} {fmt(row.own)} "
                  f"{row.engine} {row.message[:100]}", flush=True)

    graded = [r for r in rows if not r.skipped]
    skipped = [r for r in rows if r.skipped]
    (work / "results.json").write_text(json.dumps(
        [{"producer": r.producer, "variant": r.variant, "file": r.file, "grader": r.grader, "own": r.own,
          "engine": r.engine, "outcome": r.outcome, "message": r.message, "prediction_s": r.prediction_s}
         for r in rows], indent=1) + "\n")
    print()
    print("\n".join(table(graded)))
    if skipped:
        print("\nvariants the producers could not make:")
        for r in skipped:
            print(f"  {r.producer} {r.variant}: {r.message[:200]}")
    mixed = [r for r in graded if r.variant.startswith("mixed_")]
    if mixed:
        print("\nmixed-precision prediction time in the grader (s):")
        for r in mixed:
            print(f"  {r.producer:22s} {r.file:36s} {fmt(r.prediction_s, 2)}")
    lines = summary(rows, notes)
    print()
    print("\n".join(lines))
    seconds = time.monotonic() - t0
    print(f"\n{seconds:.0f} s in all")
    if not args.smoke and not args.no_grade:
        write_docs(args.docs, graded, lines, versions, skipped, seconds, argv_shown)
        print(f"wrote {args.docs}")
    if args.fixtures:
        problems = write_fixtures(args.fixtures, work, truth, argv_shown)
        print(f"wrote {args.fixtures}" + ("; " + "; ".join(problems) if problems else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
