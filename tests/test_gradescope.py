"""Gradescope: the real CLI builds the autograder zip, the real run_autograder grades uploads with it.

Each test unpacks a bundle into a fake Gradescope tree (``<dir>/autograder/source``, ``submission/``,
``results/``) and runs ``bash source/run_autograder`` with AUTOGRADER_ROOT and AUTOGRADER_PYTHON
pointing at it, through the real sandbox. setup.sh (apt, pip) is only checked with ``bash -n``.

The tree lives in a world-traversable folder, like /autograder on Gradescope: pytest's tmp_path is
0700, which would hide the labels from uid 65534 by accident and prove nothing about the bundle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

import pytest

import course_config
from autograder import sandbox
from autograder.course_data import DATA_DIR_ENV

COURSE = course_config.COURSE_DIR
A = course_config.MNIST_DENSE
RELEASE = COURSE / "release" / A.name


# ------------------------------------------------------------------------------------------------
# Helpers: build, unpack, run
# ------------------------------------------------------------------------------------------------
def build_command() -> tuple[str, ...]:
    """The ``autograder gradescope`` command, as an instructor runs it."""
    return (sys.executable, "-m", "autograder", "gradescope")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (sandbox.SANDBOX_ENV, "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.update(extra)
    return env


def build(out: Path, assignment: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*build_command(), assignment, "--out", str(out), *args], capture_output=True, text=True,
                          env=env or clean_env(), timeout=300)


def mode_of(info: zipfile.ZipInfo) -> int:
    return stat.S_IMODE(info.external_attr >> 16)


def unpack(zip_path: Path, dest: Path) -> None:
    """Extract like `unzip`: with the permission bits stored in the zip."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            zf.extract(info, dest)
            if mode_of(info):
                os.chmod(dest / info.filename, mode_of(info))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, mnist):
    """Zips built once per module by the real CLI: ``bundles(profile, execute)`` -> path."""
    folder = tmp_path_factory.mktemp("bundles")
    built: dict[tuple[str, bool], Path] = {}

    def get(profile: str = "quick", execute: bool = False) -> Path:
        if (profile, execute) not in built:
            out = folder / f"{A.name}-{profile}{'-execute' if execute else ''}.zip"
            proc = build(out, A.name, "--profile", profile, *(["--execute"] if execute else []))
            assert proc.returncode == 0, proc.stderr
            built[profile, execute] = out
        return built[profile, execute]

    return get


@pytest.fixture
def gradescope_root():
    """``make(zip)``: a fake /autograder (source unpacked, empty submission/ and results/)."""
    made = []

    def make(zip_path: Path) -> Path:
        top = Path(tempfile.mkdtemp(prefix="gradescope-test-"))
        made.append(top)
        top.chmod(0o755)
        root = top / "autograder"
        for name in ("source", "submission", "results"):
            (root / name).mkdir(parents=True)
        unpack(zip_path, root / "source")
        return root

    yield make
    for top in made:
        shutil.rmtree(top, ignore_errors=True)


def run_autograder(root: Path, python: str = sys.executable, user: int | None = None,
                   **env: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Gradescope's per-submission step; the data is only where the bundle put it."""
    keras_home = Path(tempfile.mkdtemp(prefix="gradescope-keras-"))  # an empty Keras cache
    environment = clean_env(AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=python, KERAS_HOME=str(keras_home), **env)
    environment.pop(DATA_DIR_ENV, None)
    try:
        proc = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                              env=environment, timeout=600, cwd="/",
                              **({"user": user, "group": user, "extra_groups": []} if user is not None else {}))
    finally:
        shutil.rmtree(keras_home, ignore_errors=True)
    results = json.loads((root / "results" / "results.json").read_text())
    return proc, results


def assert_autograder_failed(results: dict, *words: str) -> None:
    assert results["score"] == 0
    [test] = results["tests"]
    assert test["name"] == "autograder failed" and test["status"] == "failed"
    assert test["visibility"] == "visible" and results["visibility"] == "visible"
    for word in words:
        assert word in test["output"] and word in results["output"], (word, test["output"])


@pytest.fixture(scope="module")
def nobody_python():
    """A Python that uid 65534 can run, with this venv's packages: what setup.sh's /opt venv is on Gradescope.

    This venv's interpreter may sit under a 0700 home (pyenv in /root): then a venv of the system's
    Python of the same version is made in a world-readable folder, its site-packages pointing at ours.
    """
    if sandbox.unreachable_for_nobody(sys.executable) is None:
        yield sys.executable
        return
    name = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = next((p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}")
                 if os.path.exists(p) and sandbox.unreachable_for_nobody(p) is None), None)
    packages = sysconfig.get_paths()["purelib"]
    if base is None or sandbox.unreachable_for_nobody(packages):
        pytest.skip(f"no {name} that uid {sandbox.NOBODY} can run with this venv's packages")
    folder = Path(tempfile.mkdtemp(prefix="ml4phys-venv-"))
    try:
        folder.chmod(0o755)
        subprocess.run([base, "-m", "venv", "--without-pip", str(folder / "venv")], check=True, timeout=120)
        python = str(folder / "venv" / "bin" / "python")
        own = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
        Path(own, "kit-deps.pth").write_text(packages + "\n")
        subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
        yield python
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# The bundle
# ------------------------------------------------------------------------------------------------
def test_bundle_layout(bundles, tmp_path):
    from autograder.course_data import mnist_candidates
    from autograder.worker import kit_version

    path = bundles("quick")
    with zipfile.ZipFile(path) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        manifest = json.loads(zf.read("bundle.json"))
        bundled = zf.read("data/mnist.npz")
    for script in ("setup.sh", "run_autograder"):
        assert mode_of(infos[script]) == 0o755, script
    assert mode_of(infos["data/"]) == 0o700 and mode_of(infos["data/mnist.npz"]) == 0o600
    for name in ("kit/pyproject.toml", "kit/README.md", "kit/course_config.py", "kit/autograder/grading/submission.py",
                 "kit/autograder/gradescope/run.py", "kit/autograder/checks/test_mnist_dense.py",
                 f"kit/release/{A.name}/{A.notebook}"):
        assert name in infos, name
    if (COURSE / "docs" / "reference_roc.json").exists():
        assert "kit/docs/reference_roc.json" in infos
    assert not [n for n in infos if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in infos if n.startswith("kit/release/") and f"/{A.name}/" not in n]
    # The test data is the MNIST file this kit grades with (the first valid candidate), labels and all.
    source = next(p for _, p in mnist_candidates() if p.is_file())
    assert hashlib.sha256(bundled).hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    assert manifest["assignment"] == A.name and manifest["profile"] == "quick" and manifest["execute"] is False
    assert manifest["kit_version"] == kit_version()
    assert manifest["data"] == [{"file": "mnist.npz", "bytes": len(bundled), "sha256": hashlib.sha256(bundled).hexdigest()}]
    # Both scripts parse; the same kit and data give the same bytes.
    unpack(path, tmp_path / "source")
    for script in ("setup.sh", "run_autograder"):
        proc = subprocess.run(["bash", "-n", str(tmp_path / "source" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    again = build(tmp_path / "again.zip", A.name, "--profile", "quick")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.zip").read_bytes() == path.read_bytes()


def test_bundle_refuses_to_build_without_the_hidden_data(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = clean_env(COURSE_DATA_DIR=str(empty), KERAS_HOME=str(empty))
    proc = build(tmp_path / "mnist.zip", A.name, env=env)
    assert proc.returncode == 2 and "needs MNIST with its test labels" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "mnist.zip").exists()
    if course_config.SUSY_DATA["full"].source == "uci":
        proc = build(tmp_path / "susy.zip", "susy", "--profile", "full", env=env)
        assert proc.returncode == 2 and "needs the UCI SUSY file" in proc.stderr, proc.stderr
    # Simulated SUSY events need no data file.
    proc = build(tmp_path / "susy-quick.zip", "susy", "--profile", "quick", env=env)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "susy-quick.zip") as zf:
        assert json.loads(zf.read("bundle.json"))["data"] == []
        assert [n for n in zf.namelist() if n.startswith("data/")] == ["data/"]
        assert "kit/release/susy/susy.ipynb" in zf.namelist()


# ------------------------------------------------------------------------------------------------
# Grading uploads
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference_model(tmp_path_factory, mnist):
    """The reference architecture, trained like the solution for 2 epochs on all 60,000 images (~15 s)."""
    import keras

    (x_train, y_train), _ = mnist
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(512, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ])
    steps = 2 * math.ceil(len(x_train) / 128)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=steps)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train.astype("float32") / 255.0, y_train, epochs=2, batch_size=128, verbose=0)
    path = tmp_path_factory.mktemp("reference") / A.model_file
    model.save(path)
    return path


@pytest.mark.slow
def test_reference_model_gets_full_marks(bundles, gradescope_root, reference_model):
    root = gradescope_root(bundles("quick"))
    folder = root / "submission" / "my_upload"  # everything in one folder: that folder is graded
    folder.mkdir()
    shutil.copyfile(RELEASE / A.notebook, folder / A.notebook)
    shutil.copyfile(reference_model, folder / A.model_file)
    (root / "submission_metadata.json").write_text(json.dumps(
        {"id": 1, "users": [{"email": "ada@example.edu", "name": "Ada Lovelace", "id": 7}]}))
    proc, results = run_autograder(root)
    assert results["score"] == results["max_score"] == A.max_score == 10, (results, proc.stderr)
    assert [t["tags"] for t in results["tests"]] == [[c.id] for c in A.checks]
    assert all(t["status"] == "passed" and t["score"] == t["max_score"] for t in results["tests"])
    extra = results["extra_data"]
    assert extra["student"] == "ada@example.edu" and extra["profile"] == "quick" and extra["executed"] is False
    assert extra["sandbox"] in ("bwrap", "unshare")  # an isolating backend works on this machine
    assert "graded ada@example.edu: 10 / 10" in proc.stdout
    assert (root / "results" / "feedback.md").is_file()
    try:
        import autograder.exporters.feedback_html  # noqa: F401 - optional: written when the kit has it
    except ImportError:
        return
    assert (root / "results" / "feedback.html").is_file()


def test_untouched_release_scores_zero(bundles, gradescope_root):
    root = gradescope_root(bundles("quick"))
    shutil.copytree(RELEASE, root / "submission", dirs_exist_ok=True)  # the notebook and its helper files
    proc, results = run_autograder(root)
    assert results["score"] == 0 and results["max_score"] == A.max_score, proc.stderr
    assert len(results["tests"]) == len(A.checks)
    assert all("not found" in t["output"] and t["status"] == "failed" for t in results["tests"])
    assert results["extra_data"]["student"] == "submission"


# A first cell that hunts for the test labels everywhere a submission could look.
PROBE = r'''
import os
import numpy as np

def _labels_in(path):
    name = os.path.basename(path).lower()
    if "y_test" in name or "labels-idx1" in name or (
            "labels" in name and name.endswith((".npy", ".npz", ".csv", ".txt", ".json"))):
        return True
    if name.endswith((".npz", ".npy")):
        try:
            data = np.load(path, allow_pickle=False)
            return "y_test" in getattr(data, "files", ())
        except Exception:
            return False
    return False

def scan(deep, shallow, limit=100_000):
    """Files with test labels under ``deep`` (whole trees) and ``shallow`` (two levels)."""
    found, seen = [], 0
    for tops, depth in ((deep, 12), (shallow, 2)):
        for top in tops:
            if not top or not os.path.isdir(top):
                continue
            base = os.path.abspath(top).rstrip("/").count("/")
            for dirpath, dirnames, filenames in os.walk(top):
                if dirpath.startswith(("/proc", "/sys", "/dev")):
                    dirnames[:] = []
                    continue
                if os.path.abspath(dirpath).rstrip("/").count("/") - base >= depth - 1:
                    dirnames[:] = []
                for name in filenames:
                    seen += 1
                    path = os.path.join(dirpath, name)
                    if seen <= limit and _labels_in(path) and path not in found:
                        found.append(path)
    return found
'''
PROBE_CALL = '''
found = scan(["/autograder", GRADESCOPE_ROOT, os.environ.get("COURSE_DATA_DIR"), "/data", os.environ.get("HOME"),
              os.getcwd()], ["/", "/tmp"])
raise RuntimeError(f"labels readable: {found}")
'''


def probe_notebook(root: Path) -> str:
    import nbformat

    nb = nbformat.read(RELEASE / A.notebook, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE + f"GRADESCOPE_ROOT = {str(root)!r}\n" + PROBE_CALL))
    return nbformat.writes(nb)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["default", "none"], ids=["default-sandbox", "no-namespaces-uid65534"])
def test_submission_cannot_read_the_labels(backend, bundles, gradescope_root, mnist, request):
    if backend == "none" and os.geteuid() != 0:
        pytest.skip("without namespaces, only a grader running as root may run student code")
    python = request.getfixturevalue("nobody_python") if backend == "none" else sys.executable
    root = gradescope_root(bundles("quick", execute=True))
    (root / "submission" / A.notebook).write_text(probe_notebook(root))
    data = root / "source" / "data"
    # As if the zip had been unpacked carelessly: the grader must lock the labels up itself.
    for path in (root / "source", data):
        path.chmod(0o755)
    (data / "mnist.npz").chmod(0o644)
    scope = {}
    exec(PROBE, scope)  # the probe does find labels it can read (here, as root, on the grader's side)
    assert scope["scan"]([str(data)], []) == [str(data / "mnist.npz")]

    proc, results = run_autograder(root, python=python, **({sandbox.SANDBOX_ENV: "none"} if backend == "none" else {}))
    assert "labels readable: []" in results["output"], (results["output"], proc.stderr)
    accuracy = next(t for t in results["tests"] if t["tags"] == ["test_accuracy"])
    assert accuracy["score"] == 0 and results["score"] == 0
    extra = results["extra_data"]
    assert extra["executed"] is True and extra["execution"]["status"] == "failed"
    assert (extra["sandbox"] == "none") == (backend == "none")
    # Locked up again before the notebook ran, and no label leaked into what the student sees.
    for path, mode in ((root / "source", 0o700), (data, 0o700), (data / "mnist.npz", 0o600)):
        st = path.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (mode, 0), path
    text = (root / "results" / "results.json").read_text()
    _, (_, y_test) = mnist
    first = [int(v) for v in y_test[:24]]
    assert json.dumps(first)[1:-1] not in text and "".join(map(str, first)) not in text
    assert "y_test" not in text


# ------------------------------------------------------------------------------------------------
# Failing closed, and failing visibly
# ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="runs the grader as uid 65534, which needs root")
def test_without_namespaces_a_grader_that_is_not_root_refuses(bundles, gradescope_root, nobody_python):
    root = gradescope_root(bundles("quick", execute=True))
    (root / "submission" / A.notebook).write_text(probe_notebook(root))
    os.chown(root / "results", sandbox.NOBODY, sandbox.NOBODY)
    proc, results = run_autograder(root, python=nobody_python, user=sandbox.NOBODY, **{sandbox.SANDBOX_ENV: "none"})
    assert_autograder_failed(results, "refused", "does not run as root")
    assert "labels readable" not in json.dumps(results)


@pytest.mark.skipif(os.geteuid() != 0, reason="as root, backend none runs student code as uid 65534")
def test_without_namespaces_a_python_nobody_can_run_is_required(bundles, gradescope_root):
    if sandbox.unreachable_for_nobody(sys.executable) is None:
        pytest.skip(f"uid {sandbox.NOBODY} can run this venv's Python here")
    root = gradescope_root(bundles("quick"))
    proc, results = run_autograder(root, **{sandbox.SANDBOX_ENV: "none"})
    assert_autograder_failed(results, "refused", "cannot reach the grader's Python", "setup.sh")


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_an_internal_error_leaves_a_visible_failure(damage, bundles, gradescope_root):
    root = gradescope_root(bundles("quick"))
    shutil.copyfile(RELEASE / A.notebook, root / "submission" / A.notebook)
    manifest = root / "source" / "bundle.json"
    if damage == "missing":
        manifest.unlink()
    else:
        manifest.write_text('{"assignment": "mnist_dense", "profile":')
    proc, results = run_autograder(root)
    assert proc.returncode == 0
    assert_autograder_failed(results, "bundle.json", "autograder failed")
    assert "Traceback" in proc.stderr  # for the course staff, in Gradescope's log


def test_a_missing_python_still_leaves_a_valid_result(bundles, gradescope_root, tmp_path):
    root = gradescope_root(bundles("quick"))
    proc, results = run_autograder(root, python=str(tmp_path / "no-such-python"))
    assert_autograder_failed(results, "setup.sh", "no-such-python")
