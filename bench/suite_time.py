"""How long the test suite takes, and where the time goes: the run as ``make test`` runs it, timed.

Runs ``python -m pytest`` in the repository (the options of pyproject.toml: a worker per core, a test
module to a worker) and prints the wall time, the CPU time of pytest and everything it started, the number of
tests and their outcome, and the ten slowest tests (setup, call and teardown together: a module
fixture's cost shows on the first test that needs it). Records the run in ``docs/test_suite.json``
and renders ``docs/test_suite.md`` (the newest run first).

    python bench/suite_time.py                   # the whole suite, as make test runs it
    python bench/suite_time.py --workers 0       # one process (no xdist), for comparison
    python bench/suite_time.py --label "busy"    # say what was special about this run
    python bench/suite_time.py --smoke           # two small test files: a check that it runs; docs/ untouched

Speed goals (the suite in at most 20 minutes on a quiet 2-core machine) are read from these figures, not
asserted by a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe as describe_machine  # noqa: E402  (bench/machine.py)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SMOKE_TESTS = ["tests/test_config.py", "tests/test_files.py"]


def run_suite(args: list[str], junit: Path) -> dict:
    """Run pytest with ``args`` in the repository; its figures."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}", *args],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    summary = next((line.strip("= ") for line in reversed(proc.stdout.splitlines()) if " in " in line and "=" in line),
                   proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "")
    tests = []
    root = ET.parse(junit).getroot() if junit.is_file() else None
    for case in (root.iter("testcase") if root is not None else []):
        name = node_id(case.get("classname", ""), case.get("name"))
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        tests.append({"test": name, "seconds": float(case.get("time") or 0), "outcome": outcome})
    return {"returncode": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "summary": summary,
            "tests": tests, "output_tail": proc.stdout[-3000:] + proc.stderr[-2000:]}


def node_id(classname: str, name: str) -> str:
    """pytest's id of a test from JUnit's ``classname`` ("tests.test_bench.TestBenchSmoke") and ``name``."""
    parts = classname.split(".")
    for i in range(len(parts), 0, -1):  # the longest prefix that is a test file; the rest are classes
        if (ROOT / Path(*parts[:i])).with_suffix(".py").is_file():
            return "::".join(["/".join(parts[:i]) + ".py", *parts[i:], name])
    return f"{classname.replace('.', '/')}.py::{name}"


def slowest(tests: list[dict], n: int = 10) -> list[dict]:
    return sorted(tests, key=lambda t: -t["seconds"])[:n]


def by_module(tests: list[dict]) -> dict[str, float]:
    """Seconds per test module (or class: a scope of --dist loadscope), the longest first (each runs on one worker:
    the longest bound the run)."""
    totals: dict[str, float] = {}
    for t in tests:
        module = t["test"].rsplit("::", 1)[0]
        totals[module] = totals.get(module, 0.0) + t["seconds"]
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def render(runs: list[dict]) -> str:
    """docs/test_suite.md from the recorded runs (newest first)."""
    lines = [
        "# The test suite's time",
        "",
        "Written by `bench/suite_time.py`: `python -m pytest` in the repository as `make test` runs it (every core,",
        "a test module to a worker), timed; CPU time is pytest's and everything it started. Install time is not counted.",
        "",
        "| date | machine | label | workers | tests | wall | CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lines.append(f"| {run['date']} | {run['machine']} | {run.get('label') or '-'} | {run['workers']} | "
                     f"{run['summary']} | {run['wall_s'] / 60:.1f} min ({run['wall_s']:.0f} s) | "
                     f"{run['cpu_s'] / 60:.1f} min |")
    newest = runs[0]
    lines += ["", f"The ten slowest tests of the newest run ({newest['date']}, {newest.get('label') or 'no label'}):", "",
              "| seconds | test |", "|---|---|"]
    lines += [f"| {t['seconds']:.1f} | `{t['test']}` |" for t in newest["slowest"]]
    if newest.get("modules"):
        lines += ["", "Its ten longest test modules and test classes (each runs on one worker):", "", "| seconds | module or class |", "|---|---|"]
        lines += [f"| {seconds:.1f} | `{module}` |" for module, seconds in newest["modules"].items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="auto", help="pytest-xdist's -n (default: auto, one per core; 0: one process)")
    parser.add_argument("--label", default="", help="what was special about this run (e.g. 'fresh clone', 'busy')")
    parser.add_argument("--smoke", action="store_true", help=f"run only {', '.join(SMOKE_TESTS)}; record nothing")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (e.g. -m 'not slow')")
    args = parser.parse_args(argv)

    extra = ["-n", str(args.workers), *args.pytest_args, *(SMOKE_TESTS if args.smoke else [])]
    with tempfile.TemporaryDirectory(prefix="suite-time-") as tmp:
        run = run_suite(extra, Path(tmp) / "junit.xml")
    counts = {o: sum(t["outcome"] == o for t in run["tests"]) for o in ("passed", "failed", "skipped")}
    print(f"suite: {len(run['tests'])} tests ({counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} "
          f"skipped) in {run['wall_s']:.1f} s wall ({run['wall_s'] / 60:.1f} min), {run['cpu_s']:.1f} s CPU; "
          f"workers {args.workers}; pytest says: {run['summary']}")
    print("ten slowest tests (setup + call + teardown):")
    for t in slowest(run["tests"]):
        print(f"  {t['seconds']:7.1f} s  {t['test']}")
    modules = by_module(run["tests"])
    print("modules and test classes (each on one worker), the ten longest:")
    for module, seconds in list(modules.items())[:10]:
        print(f"  {seconds:7.1f} s  {module}")
    if run["returncode"] != 0:
        print(run["output_tail"], file=sys.stderr)
    if args.smoke:
        return run["returncode"]
    record = {"date": dt.date.today().isoformat(), "machine": describe_machine(), "label": args.label,
              "workers": args.workers, "summary": run["summary"], "wall_s": run["wall_s"], "cpu_s": run["cpu_s"],
              "slowest": slowest(run["tests"]),
              "modules": {m: round(v, 1) for m, v in list(by_module(run["tests"]).items())[:10]}}
    history = DOCS / "test_suite.json"
    runs = json.loads(history.read_text()) if history.is_file() else []
    runs.insert(0, record)
    history.write_text(json.dumps(runs, indent=1) + "\n")
    (DOCS / "test_suite.md").write_text(render(runs))
    print(f"wrote {DOCS / 'test_suite.md'}")
    return run["returncode"]


if __name__ == "__main__":
    sys.exit(main())
