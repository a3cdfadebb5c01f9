"""The corpus of broken, resource-hungry and hostile submissions, each with its expected outcome.

A case writes one student's submission folder. ``zero`` names the checks that must score zero ("all"
for every one), ``message`` is a regular expression the student's feedback (notes and check messages)
must match, and ``mode`` says how it is graded: ``saved`` (the saved model files) or ``execute``
(the notebook re-executed in the sandbox). ``docs/security.md`` lists the cases with their outcomes.
"""

from __future__ import annotations

import copy
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import course_config
from autograder.grading.execute import grade_id

COURSE = course_config.COURSE_DIR


@dataclass(frozen=True)
class Case:
    student: str
    assignment: str
    category: str  # broken, resource, hostile
    mode: str  # saved, execute
    build: Callable  # (folder, models) -> None; models: dict of ready-made model files
    zero: tuple[str, ...] | str
    message: str


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------
def copy_model(name: str, target: str | None = None):
    def build(folder: Path, models: dict) -> None:
        a = course_config.assignment(folder.name)
        (folder / (target or a.model_file)).write_bytes(models[name].read_bytes())
    return build


def weights_only(name: str):
    """model.save_weights(...) output handed in under the model file's name (an .h5 file without a model)."""
    def build(folder: Path, models: dict) -> None:
        import keras

        a = course_config.assignment(folder.name)
        path = folder / "weights.weights.h5"
        keras.saving.load_model(models[name]).save_weights(path)
        path.rename(folder / a.model_file)
    return build


def write(files: dict[str, bytes | str]):
    def build(folder: Path, models: dict) -> None:
        for name, content in files.items():
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return build


def edited_config(source: str, edit: Callable[[dict], None]):
    """A .keras file whose config.json was changed by ``edit`` (weights untouched)."""
    def build(folder: Path, models: dict) -> None:
        a = course_config.assignment(folder.name)
        with zipfile.ZipFile(models[source]) as src, zipfile.ZipFile(folder / a.model_file, "w") as dst:
            for item in src.infolist():
                data = src.read(item)
                if item.filename == "config.json":
                    config = json.loads(data)
                    edit(config)
                    data = json.dumps(config).encode()
                dst.writestr(item, data)
    return build


def truncated(source: str):
    def build(folder: Path, models: dict) -> None:
        a = course_config.assignment(folder.name)
        data = models[source].read_bytes()
        (folder / a.model_file).write_bytes(data[: len(data) // 2])
    return build


def susy_files(**replace):
    """The three SUSY model files, some replaced (name -> model key, or None for missing)."""
    def build(folder: Path, models: dict) -> None:
        for spec in course_config.SUSY.models:
            key = replace.get(spec.name, f"susy_{spec.name}")
            if key is not None:
                (folder / spec.file).write_bytes(models[key].read_bytes())
    return build


def release_notebook(assignment: str):
    import nbformat

    a = course_config.assignment(assignment)
    return nbformat.read(COURSE / "release" / assignment / a.notebook, as_version=4)


def notebook(edit: Callable | None = None, *, cell: str | None = None, other: str | None = None):
    """The assignment's released notebook, with ``cell`` (code) inserted before its imports, or edited."""
    def build(folder: Path, models: dict) -> None:
        import nbformat

        a = course_config.assignment(folder.name)
        nb = release_notebook(other or folder.name)
        if cell is not None:
            nb.cells.insert(_index(nb, "imports"), nbformat.v4.new_code_cell(cell))
        if edit is not None:
            edit(nb)
        nbformat.write(nb, folder / a.notebook)
    return build


def _index(nb, cell_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if grade_id(c) == cell_id)


def _delete_and_reorder(nb):
    del nb.cells[_index(nb, "save_model")]
    i, j = _index(nb, "validation_md"), _index(nb, "validation_split")
    nb.cells[i], nb.cells[j] = nb.cells[j], nb.cells[i]


def _duplicate(nb):
    i = _index(nb, "normalise")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))


def _modify_locked(nb):
    nb.cells[_index(nb, "load_data")].source = "x_train = y_train = x_test = y_test = None  # 'simplified'"


def _empty(nb):
    nb.cells = []


# Cells run inside the sandbox by the execute cases. SCAN prints what it could find; the test checks
# that no test label is among it.
SCAN = r'''
import hashlib, json, os
found, readable = [], []
for top in ["/", "/data", "/submission", "/tmp", os.path.expanduser("~"), "/proc/1/root", "/proc/self/root"]:
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath.startswith(("/proc/", "/sys", "/dev")) and not dirpath.startswith("/proc/1/root"):
            dirnames[:] = []
            continue
        for name in filenames:
            if name.endswith((".npz", ".npy", ".csv", ".gz", ".json", ".pkl")) or "label" in name.lower():
                path = os.path.join(dirpath, name)
                try:
                    with open(path, "rb") as f:
                        data = f.read(50_000_000)
                    readable.append(path)
                    found.append(hashlib.sha256(data).hexdigest())
                except OSError:
                    pass
        if len(readable) > 2000:
            break
import numpy as np
for path in readable:
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    arr = z[key]
                    found.append(hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest())
                    print("ARRAY", path, key, arr.shape)
        except Exception as exc:
            print("NPZ", path, type(exc).__name__)
print("SCAN-HASHES", json.dumps(found))
print("SCAN-FILES", json.dumps(readable[:200]))
'''

NETWORK = r'''
import socket
for host, port in [("1.1.1.1", 53), ("8.8.8.8", 443), ("127.0.0.1", PORT), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host, port)
    except OSError as exc:
        print("refused", host, port, type(exc).__name__)
'''

WRITE_OUTSIDE = r'''
import os
for path in [COURSE + "/course_config.py", COURSE + "/pwned.txt", "/data/pwned.txt", "/usr/pwned.txt",
             "/etc/pwned.txt", os.path.expanduser("~") + "/pwned.txt", "/submission/../pwned.txt"]:
    try:
        with open(path, "a") as f:
            f.write("pwned")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, type(exc).__name__)
'''

MONKEYPATCH = r'''
import builtins, numpy as np, keras
np.argmax = lambda *a, **k: 0
np.mean = lambda *a, **k: 1.0
builtins.sum = lambda *a, **k: 10_000
import sklearn.metrics
sklearn.metrics.roc_auc_score = lambda *a, **k: 1.0
keras.Model.predict = lambda self, x, **k: np.eye(10)[np.zeros(len(x), int)]
model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.save("mnist_dense.keras")
print("saved an untrained model with numpy, builtins and keras patched")
'''

HOSTILE_TEXT = ('raise ValueError("<script>alert(1)</script> <img src=x onerror=alert(2)> =HYPERLINK(\\"http://evil\\") '
                '| ``` [click](http://evil) ![x](http://evil/p.png)")')


# The limits test_corpus grades the corpus under (patched into course_config; the workers must apply them).
TIME_LIMIT_S, MEMORY_LIMIT_MB, DISK_LIMIT_MB, TMP_LIMIT_MB, MAX_PROCESSES = 40, 2048, 300, 200, 256


def cases(port: int) -> list[Case]:
    """Every case; ``port`` is a TCP port the grading machine listens on (loopback)."""
    D, C, G, S = "mnist_dense", "mnist_cnn", "mnist_augment", "susy"
    all_ = "all"
    return [
        # -------------------------------------------------------------------- broken (saved models)
        Case("no-model", D, "broken", "saved", notebook(), all_, r"model file mnist_dense\.keras not found"),
        Case("wrong-input", D, "broken", "saved", copy_model("input32"), ("test_accuracy",), r"input"),
        Case("wrong-output", D, "broken", "saved", copy_model("output5"), ("output_layer", "test_accuracy"),
             r"Dense\(10"),
        Case("nan-predictions", D, "broken", "saved", copy_model("nan"), ("test_accuracy",), r"NaN|finite"),
        Case("h5-weights-only", D, "broken", "saved", weights_only("dense"), all_,
             r"holds weights only \(model\.save_weights\)"),
        Case("truncated-zip", C, "broken", "saved", truncated("cnn"), all_, r"zip|truncated|not a valid"),
        Case("config-units-text", D, "broken", "saved",
             edited_config("dense", lambda c: c["config"]["layers"][-1]["config"].update(units="ten")),
             ("output_layer", "test_accuracy"), r"found Dense\(ten, softmax\)[\s\S]*invalid value for `units`"),
        Case("config-layers-object", D, "broken", "saved",
             edited_config("dense", lambda c: c["config"].update(layers={"a": 1})), all_,
             r"malformed model config \(config.json\): the model: config.layers is dict, expected a list"),
        Case("config-unexpected-values", G, "broken", "saved",
             edited_config("cnn_augment", lambda c: c["config"]["layers"][1].update(
                 config=[1e308, None, {"nested": [[[]]]}])), all_, r"malformed model config .*layer 1 config is list"),
        Case("config-not-json", C, "broken", "saved", edited_zip_member("cnn", "config.json", b"{not json"), all_,
             r"not valid JSON"),
        Case("skops-bad-schema", S, "broken", "saved", susy_files(logreg="susy_bad_schema"),
             ("logreg_family", "logreg_auc"), r"susy_logreg\.skops"),
        Case("susy-missing-dnn", S, "broken", "saved", susy_files(dnn=None), ("dnn_family", "dnn_auc"),
             r"susy_dnn\.keras not found"),
        # -------------------------------------------------------------------- broken (notebooks)
        Case("invalid-json", D, "broken", "execute", write({"mnist_dense.ipynb": "{\"cells\": [ oops"}), all_,
             r"not a valid notebook"),
        Case("other-notebook", C, "broken", "execute", notebook(other=D), all_, r"not the .* notebook"),
        Case("empty-notebook", G, "broken", "execute", notebook(_empty), all_, r"notebook is empty"),
        Case("deleted-reordered", D, "broken", "execute", notebook(_delete_and_reorder), all_,
             r"save_model were deleted; the grader put them back[\s\S]*not in the assignment's order"),
        Case("duplicate-grade-id", D, "broken", "execute", notebook(_duplicate), all_,
             r"'normalise' appears more than once"),
        Case("modified-locked-cell", D, "broken", "execute", notebook(_modify_locked), all_,
             r"load_data were changed; the grader ran them as released"),
        # -------------------------------------------------------------------- resources
        Case("infinite-loop", D, "resource", "execute", notebook(cell="while True:\n    pass"), all_,
             rf"time limit of {TIME_LIMIT_S} s exceeded"),
        Case("sleep-past-limit", C, "resource", "execute", notebook(cell="import time\ntime.sleep(10_000)"), all_,
             rf"time limit of {TIME_LIMIT_S} s exceeded"),
        Case("memory-hog", G, "resource", "execute",
             notebook(cell="hog = [bytearray(b'x' * 2**27) for _ in range(200)]"), all_,
             rf"memory limit of {MEMORY_LIMIT_MB} MB"),
        Case("ram-files", D, "resource", "execute", notebook(
            cell="for i in range(400):\n    open(f'/dev/shm/f{i}', 'wb').write(b'x' * 2**24)"), all_,
             r"memory limit of \d+ MB|no space left"),
        Case("tmp-files", S, "resource", "execute", notebook(
            cell="for i in range(400):\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 2**24)"), all_,
             rf"/tmp is limited to {TMP_LIMIT_MB} MB"),
        Case("disk-many-files", D, "resource", "execute", notebook(
            cell="for i in range(2000):\n    open(f'junk{i}.bin', 'wb').write(b'x' * 2**20)"), all_,
             r"disk limit of \d+ MB exceeded|no space left"),
        Case("fork-bomb", C, "resource", "execute", notebook(
            cell="import os, time\nwhile True:\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)"),
             all_, r"process limit"),
        Case("stdout-flood", D, "resource", "execute", notebook(
            cell="import sys\nfor _ in range(2000):\n    sys.stdout.write('x' * 2**20)"), all_,
             r"limit of \d+ MB|no space left"),
        Case("leftover-processes", D, "resource", "execute", notebook(
            cell="import subprocess\nsubprocess.Popen(['sleep', '1234'], start_new_session=True)\n"
                 "subprocess.Popen(['sh', '-c', 'sleep 3; echo late > late.txt; sleep 1234'])"), all_,
             r"NotImplementedError"),
        # -------------------------------------------------------------------- hostile
        Case("label-snooping", D, "hostile", "execute", notebook(cell=SCAN), all_, r"NotImplementedError"),
        Case("network", C, "hostile", "execute", notebook(cell=NETWORK.replace("PORT", str(port))), all_,
             r"NotImplementedError"),
        Case("kill-grader", D, "hostile", "execute", notebook(
            cell="import os, signal\nfor pid in (os.getppid(), 1, -1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                 "    except OSError as exc:\n        print('refused', pid, exc)"), all_,
             r"was killed by SIGKILL"),
        Case("write-outside", G, "hostile", "execute",
             notebook(cell=WRITE_OUTSIDE.replace("COURSE", repr(str(COURSE)))), all_, r"NotImplementedError"),
        Case("monkeypatch", D, "hostile", "execute", notebook(cell=MONKEYPATCH), ("test_accuracy",),
             r"test accuracy 0\.\d+ is below"),
        Case("sys-exit", D, "hostile", "execute", notebook(cell="import sys\nsys.exit(0)"), all_,
             r"NotImplementedError|SystemExit"),
        Case("os-exit", D, "hostile", "execute", notebook(cell="import os\nos._exit(0)"), all_,
             r"DeadKernel|died|kernel"),
        Case("lambda-layer", D, "hostile", "saved", copy_model("lambda"), all_, r"Lambda|safe"),
        Case("custom-object", D, "hostile", "saved", edited_config("dense", lambda c: c["config"]["layers"][-1].update(
            module="evil_module", class_name="Evil", registered_name="evil>Evil")),
             ("layer_types", "hidden_layer", "output_layer", "test_accuracy"), r"Could not locate class 'Evil'"),
        Case("pickle-payload", S, "hostile", "saved", susy_files(trees="susy_foreign", logreg="susy_pickled"),
             ("logreg_family", "logreg_auc", "trees_family", "trees_auc"), r"a Python pickle|outside scikit-learn"),
        Case("pickle-runs-code", S, "hostile", "saved", susy_files(trees="susy_evil_pickle"), ("trees_family", "trees_auc"),
             r"susy_trees\.skops is a Python pickle"),
        Case("hostile-output-text", D, "hostile", "execute", notebook(cell=HOSTILE_TEXT), all_, r"<script>"),
        Case("=HYPERLINK(1)", D, "hostile", "saved", copy_model("dense"), (), r"."),
        Case("<img src=x onerror=alert(1)>", D, "hostile", "saved", copy_model("dense"), (), r"."),
    ]


def edited_zip_member(source: str, member: str, content: bytes):
    def build(folder: Path, models: dict) -> None:
        a = course_config.assignment(folder.name)
        with zipfile.ZipFile(models[source]) as src, zipfile.ZipFile(folder / a.model_file, "w") as dst:
            for item in src.infolist():
                dst.writestr(item, content if item.filename == member else src.read(item))
    return build


def model_files(folder: Path, mnist, models_dir: Path, susy_dir: Path) -> dict[str, Path]:
    """The model files the cases copy or edit, made once per test session."""
    import keras
    import numpy as np

    files = {
        "dense": models_dir / "dense.keras", "legacy_h5": models_dir / "legacy.h5", "lambda": models_dir / "lambda.keras",
        "cnn": models_dir / "cnn.keras", "cnn_augment": models_dir / "cnn_augment.keras",
        "susy_logreg": susy_dir / "logreg.skops", "susy_trees": susy_dir / "trees.skops", "susy_dnn": susy_dir / "dnn.keras",
        "susy_foreign": susy_dir / "foreign.skops", "susy_pickled": susy_dir / "pickled.skops",
    }
    dense = lambda shape, out: keras.Sequential([keras.Input(shape), keras.layers.Flatten(),  # noqa: E731
                                                 keras.layers.Dense(16, activation="relu"),
                                                 keras.layers.Dense(out, activation="softmax")])
    dense((32,), 10).save(folder / "input32.keras")
    dense((28, 28), 5).save(folder / "output5.keras")
    nan = dense((28, 28), 10)
    nan.layers[-1].set_weights([np.full(w.shape, np.nan, "float32") for w in nan.layers[-1].get_weights()])
    nan.save(folder / "nan.keras")
    for name in ("input32", "output5", "nan"):
        files[name] = folder / f"{name}.keras"
    with zipfile.ZipFile(files["susy_logreg"]) as src, zipfile.ZipFile(folder / "bad_schema.skops", "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                schema = json.loads(data)
                schema["content"] = {"__class__": 12, "__module__": ["sklearn"], "content": "\x00" * 10}
                data = json.dumps(schema).encode()
            dst.writestr(item, data)
    files["susy_bad_schema"] = folder / "bad_schema.skops"
    (folder / "evil.skops").write_bytes(evil_pickle())
    files["susy_evil_pickle"] = folder / "evil.skops"
    return files


PICKLE_MARKER = Path("/tmp/autograder-corpus-pickle-ran")


class _Payload:
    def __reduce__(self):
        import os

        return os.system, (f"touch {PICKLE_MARKER}",)


def evil_pickle() -> bytes:
    """A pickle that runs a shell command when loaded (it must never be)."""
    import pickle

    return pickle.dumps(_Payload())
