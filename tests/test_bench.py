"""The benchmarks start: every bench/ script answers --help, and bench/model_files.py runs in its smoke mode.

Their figures belong to their full runs (docs/); here only that they work, so that none rots unseen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "machine.py")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_every_bench_script_answers_help(script):
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage" in proc.stdout.lower(), proc.stderr[-2000:]


def test_model_files_smoke(tmp_path, mnist):
    """The kit's own Keras as the only producer, two variants: made, graded, compared, summarised."""
    proc = subprocess.run([sys.executable, str(BENCH / "model_files.py"), "--smoke", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "producer kit-keras3.15.1-tf:" in proc.stdout
    total = next(line for line in proc.stdout.splitlines() if line.startswith("TOTAL:"))
    files = int(total.split()[1])
    assert files >= 2 and f"{files} graded within 0.0005" in total, total
