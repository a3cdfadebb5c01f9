"""The benchmarks run: every bench/ script answers --help and runs in its smoke mode (tiny data, one seed or
epoch), printing its figure lines and leaving docs/ as it was.

Their figures belong to their full runs (docs/); here only that they work, so that none rots unseen.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DOCS = BENCH.parent / "docs"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "machine.py")
# Each script's smoke mode and the figure lines it must print (regular expressions, one per line).
# model_files_producer.py is run by model_files.py (test_model_files_smoke).
SMOKE = {
    "augment_tune.py": [r"^augment seed 0: test 0\.\d{4}, moved mild 0\.\d{4}, moved course 0\.\d{4}, moved strong 0\.\d{4}, \d+ s$",
                        r"^\| augment \| .* \| 0 \| [\d,]+ \| [\d.]+ % \|"],
    "calibrate.py": [r"^mnist_dense quick seed 0: test_accuracy 0\.\d{4}, moved_accuracy 0\.\d{4}, training [\d.]+ s, notebook [\d.]+ s$",
                     r"^mnist_dense quick test_accuracy: mean 0\.\d{4} min 0\.\d{4} max 0\.\d{4} std 0\.0000; training [\d.]+ s$"],
    "grading_throughput.py": [r"^nbgrader autograde: 2 submissions in [\d.]+ s$",
                              r"^our grader: 2 submissions \(1 with a saved model\) in [\d.]+ s$",
                              r"^first result after [\d.]+ s, the last after [\d.]+ s, the command ended after [\d.]+ s: ",
                              r"^ +[\d.]+ s +[\d.]+ %  the forward pass \(10,000 digits\)$",
                              r"^ +[\d.]+ s +100 % +in all: \d worker\(s\) can grade \d+ submissions/min at most",
                              r"^our grader +[\d.]+ submissions/min$", r"^ratio +[\d.]+x$",
                              r"^cluster local:2: [\d.]+ submissions/min, [\d.]+ of the pool's rate \(goal >= 0\.9\)$"],
    "copied_models.py": [r"^honest class: 6 students, 15 pairs, 0 flagged \(trained in \d+ s\)$",
                         r"^identical file: flagged; same parameters", r"^re-saved as \.h5: flagged; same parameters",
                         r"^re-saved by Keras [\d.]+ \(\.keras\) from Keras 2\.15's \.h5: flagged; same parameters",
                         r"^weights with noise: flagged; ", r"^trained one more epoch: flagged; ",
                         r"^renamed layers: flagged; same parameters",
                         r"^100 students \(4,950 pairs\): compared in [\d.]+ s CPU \(4,950 pairs measured\)$"],
    "notebook_only.py": [r"^mnist_dense: ran in \d+ s \(Python 3\.\d+\.\d+, TensorFlow [\d.]+, Keras [\d.]+, NumPy [\d.]+; no network\)$",
                         r"^  folder afterwards: mnist_dense\.ipynb, mnist_dense\.keras$",
                         r"^  check cell \{.*\} / grader \{.*\}: agree$",
                         r"^  ✓ the grader's engine agrees with your model on 6,000 of 6,000 validation images$",
                         r"^notebook-only release: 1 of 1 ran top to bottom; check cell and grader agree on every check$"],
    "susy_load.py": [r"^5,000 simulated events in [\d.]+ s",
                     r"^\| SUSY\.csv\.gz \| \d+ \| load_susy, cached \| [\d.]+ \| [\d.]+x \| \d+ \| [\d.]+ \|$"],
    "susy_real_cv.py": [r"^fold 0: logreg_auc 0\.\d{4}, trees_auc 0\.\d{4}, dnn_auc 0\.\d{4}; training [\d.]+ s$"],
    "susy_realism.py": [r"^simulated 4,000 events at [\d,]+ events/s$", r"^two-sample AUC: background 0\.\d{3}, signal 0\.\d{3}$",
                        r"^mass point 150/0: two-sample AUC 0\.\d{3}$"],
    "susy_tune.py": [r"^current knobs .*: mean two-sample AUC 0\.\d{4} \(sd 0\.\d{4} over seeds\)$", r"^  1 \{.*\} -> 0\.\d{3} 0\.\d{3}$"],
    "suite_time.py": [r"^suite: \d+ tests \(\d+ passed, 0 failed, 0 skipped\) in [\d.]+ s wall \([\d.]+ min\), [\d.]+ s CPU",
                      r"^ten slowest tests \(setup \+ call \+ teardown\):$", r"^ +[\d.]+ s  tests/test_\w+\.py::"],
    "time_to_accuracy.py": [r"^reference \(mnist_cnn solution\): [\d,]+ parameters, 3,000 training images, EPOCHS = 1",
                            r"^  ratio reference/anchor: (n/a|[\d.]+) \(goal <= 0\.33\)$"],
}


def docs_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(DOCS.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(DOCS)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_bench_script_answers_help(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower(), proc.stderr[-2000:]


@pytest.mark.slow
def test_model_files_smoke(tmp_path, mnist):
    """The kit's own Keras as the only producer, two variants: made, graded, compared, summarised."""
    proc = subprocess.run([sys.executable, str(BENCH / "model_files.py"), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "producer kit-keras3.15.1-tf:" in proc.stdout
    total = next(line for line in proc.stdout.splitlines() if line.startswith("TOTAL:"))
    files = int(total.split()[1])
    assert files >= 2 and f"{files} graded within 0.0005" in total, total


def test_every_bench_script_has_a_smoke_test():
    assert set(SMOKE) | {"model_files.py", "model_files_producer.py"} == {p.name for p in SCRIPTS}


def run_smoke(script: str) -> None:
    """The script's smoke mode runs to the end, prints its figure lines and writes nothing under docs/."""
    before = docs_digest()
    proc = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for pattern in SMOKE[script]:
        assert re.search(pattern, proc.stdout, re.M), f"no line matching {pattern!r} in:\n{proc.stdout[-3000:]}"
    assert docs_digest() == before, f"{script} --smoke changed docs/"


# The smokes in two classes: pytest-xdist's --dist loadscope gives each class to a worker of its own, so the
# benches (nine minutes together on one worker) run on both cores.
SUSY_SMOKES = sorted(s for s in SMOKE if s.startswith("susy_"))
OTHER_SMOKES = sorted(s for s in SMOKE if not s.startswith("susy_"))


@pytest.mark.slow
class TestSusyBenchSmoke:
    @pytest.mark.parametrize("script", SUSY_SMOKES)
    def test_bench_smoke(self, script):
        run_smoke(script)


@pytest.mark.slow
class TestBenchSmoke:
    @pytest.mark.parametrize("script", OTHER_SMOKES)
    def test_bench_smoke(self, script, mnist):
        run_smoke(script)
