"""Benchmark the SUSY loader against pandas on a UCI-format file of simulated events.

Writes ``--rows`` events from ``autograder.datasets.susy_sim`` in the UCI format (label then 18 features,
%.18e, no header) into a temporary folder, as ``SUSY.csv`` and (unless ``--plain-only``)
``SUSY.csv.gz``, then times, each in a fresh subprocess:

* ``load_susy(path)`` with an empty cache (parses, and writes the parsed-row cache),
* ``load_susy(path)`` again (served from that cache),
* ``pandas.read_csv(path, header=None)``.

Peak memory is the subprocess's peak resident memory during the load minus its resident memory after
importing what the load needs (numpy and course_data, or pandas). On Linux the peak (VmHWM, what
ru_maxrss reports) is reset after the imports through /proc/self/clear_refs, so import-time peaks
do not hide the load's, and read from /proc/self/status (a child's ru_maxrss also counts the
parent's memory inherited at fork); elsewhere it falls back to ru_maxrss. It is compared with the size
of what load_susy returns (X float32 (n, 18) + y int8 (n,)).

    python bench/susy_load.py                   # 1,000,000 rows, plain and gzip
    python bench/susy_load.py --rows 200000 --plain-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import gc, json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
what, path = sys.argv[1], sys.argv[2]
if what == "pandas":
    import pandas as pd
else:
    from autograder import course_data
gc.collect()
def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key))
try:  # reset the peak (high-water mark) to the current RSS, so import-time peaks do not count
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status_kb("VmRSS:")
    peak_kb = lambda: status_kb("VmHWM:")
except OSError:
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if what == "pandas":
    frame = pd.read_csv(path, header=None)
    rows = len(frame)
else:
    X, y = course_data.load_susy(path)
    rows = len(y)
seconds = time.perf_counter() - t
peak = peak_kb() - base
print(json.dumps({{"seconds": seconds, "peak_mb": peak / 1024, "rows": rows}}))
"""


def run(what, path, keras_home):
    env = {**os.environ, "KERAS_HOME": str(keras_home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT)), what, str(path)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--plain-only", action="store_true", help="skip the gzip file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--smoke", action="store_true", help="a check that it runs: 5,000 events")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = 5000

    from autograder.datasets import susy_sim

    tmp = Path(tempfile.mkdtemp(prefix="susy_bench_"))
    try:
        t = time.perf_counter()
        X, y = susy_sim.simulate(args.rows, seed=2024)
        sim_s = time.perf_counter() - t
        files = [tmp / "SUSY.csv"]
        t = time.perf_counter()
        susy_sim.write_uci_csv(files[0], X, y)
        if not args.plain_only:
            files.append(tmp / "SUSY.csv.gz")
            susy_sim.write_uci_csv(files[1], X, y, compresslevel=6)
        write_s = time.perf_counter() - t
        result_mb = (X.nbytes + len(y)) / 2**20  # what load_susy returns: float32 X, int8 y
        del X, y
        print(f"{args.rows:,} simulated events in {sim_s:.1f} s ({args.rows / sim_s:,.0f} events/s); "
              f"files written in {write_s:.1f} s")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
              f"result size {result_mb:.1f} MB\n")
        print("| file | size MB | loader | seconds | speedup vs pandas | peak MB | peak / result |")
        print("|---|---|---|---|---|---|---|")
        for path in files:
            home = tmp / f"keras_{path.name}"
            pandas = run("pandas", path, home)
            first = run("load_susy", path, home)
            cached = run("load_susy", path, home)
            assert first["rows"] == cached["rows"] == pandas["rows"] == args.rows
            size = path.stat().st_size / 2**20
            for name, r in (("pandas.read_csv(header=None)", pandas), ("load_susy, first (uncached)", first),
                            ("load_susy, cached", cached)):
                print(f"| {path.name} | {size:.0f} | {name} | {r['seconds']:.2f} | "
                      f"{pandas['seconds'] / r['seconds']:.1f}x | {r['peak_mb']:.0f} | {r['peak_mb'] / result_mb:.2f} |")
    finally:
        if args.keep:
            print(f"\nfiles kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
