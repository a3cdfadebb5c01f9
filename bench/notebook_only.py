"""A released notebook alone, run top to bottom as on Colab, and its check before hand-in beside the grader's verdict.

For each assignment: a clean folder holding only the solution notebook (the release with its answers;
the same helper cell), the quick profile's parameters injected, run top to bottom with nbclient by a
Python that does not have the kit, without a network (a network namespace of its own) and with a
fresh home (no Keras cache): the data comes from ``COURSE_DATA_DIR``, as from a data folder on a
laptop, holding what the grader gives a re-executed notebook under the quick profile (MNIST without its
test labels; SUSY's simulated training events).
Then the grader (``autograder grade --profile quick``) grades the files the run saved, and this script
compares what the notebook's "Check before you hand in" cell said with the grader's checks: each
architecture check passed or failed alike, the grader's engine agreeing with the model on every
validation image, and no helper file left beside the notebook.

The full run builds a Colab-like venv (Python 3.13, the newest TensorFlow and Keras that pip offers) in
``~/.cache/ml4phys-notebook-only/`` on first use and writes ``docs/notebook_only.md``.

    python bench/notebook_only.py                          # the four assignments in the Colab-like venv
    python bench/notebook_only.py --assignments mnist_dense,susy
    python bench/notebook_only.py --python /path/to/python # another interpreter (with tensorflow, nbclient, ipykernel)
    python bench/notebook_only.py --smoke                  # this venv, mnist_dense, one epoch (in make test)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe as describe_machine  # noqa: E402

import course_config  # noqa: E402

DOCS = ROOT / "docs" / "notebook_only.md"
CACHE = Path.home() / ".cache" / "ml4phys-notebook-only"
BASE_PYTHON = os.environ.get("PYTHON313", "/root/.pyenv/versions/3.13.0/bin/python3.13")
PACKAGES = ["tensorflow", "keras", "matplotlib", "scikit-learn", "skops", "h5py", "nbclient", "ipykernel", "nbformat"]
# Run by the interpreter under test: the notebook with nbclient, its kernel that same Python.
RUNNER = r"""
import json, sys, time, nbformat
from nbclient import NotebookClient
path, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(path, as_version=4)
start = time.monotonic()
error = None
try:
    NotebookClient(nb, timeout=3600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": sys.argv[3]}}).execute()
except Exception as exc:
    error = f"{type(exc).__name__}: {str(exc)[-2000:]}"
nbformat.write(nb, path)
errors = [{"cell": c.get("metadata", {}).get("nbgrader", {}).get("grade_id"), "error": f"{o['ename']}: {o['evalue']}"}
          for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
import keras, tensorflow, numpy
json.dump({"seconds": time.monotonic() - start, "error": error, "errors": errors, "python": sys.version.split()[0],
           "tensorflow": tensorflow.__version__, "keras": keras.__version__, "numpy": numpy.__version__},
          open(out, "w"))
"""


def colab_like_python() -> Path:
    """The Colab-like venv's Python, made on first use: Python 3.13 and the newest packages pip offers."""
    venv = CACHE / "py313"
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        if not Path(BASE_PYTHON).exists():
            raise SystemExit(f"Python 3.13 not found at {BASE_PYTHON} (set PYTHON313)")
        subprocess.run([BASE_PYTHON, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade",
                        *PACKAGES], check=True)
        (venv / ".ready").touch()
    return python


def hand_in_lines(nb) -> list[str]:
    """What the notebook's "Check before you hand in" cell printed."""
    from autograder.notebook import CHECK_SAVED_ID, grade_id

    cell = next(c for c in nb.cells if grade_id(c) == CHECK_SAVED_ID)
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream").splitlines()


# SUSY's trees cell as a student who uses XGBoost or LightGBM writes it (``--trees``); the save cell writes their formats.
TREES = {
    "xgboost": "from xgboost import XGBClassifier\n"
               "trees = XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=SEED)\n"
               "trees.fit(X_fit, y_fit)\n"
               "auc_trees = roc_auc_score(y_val, trees.predict_proba(X_val)[:, 1])\n"
               "print(f\"XGBoost: validation AUC {auc_trees:.4f}\")",
    "lightgbm": "from lightgbm import LGBMClassifier\n"
                "trees = LGBMClassifier(n_estimators=200, learning_rate=0.1, random_state=SEED, verbose=-1)\n"
                "trees.fit(X_fit, y_fit)\n"
                "auc_trees = roc_auc_score(y_val, trees.predict_proba(X_val)[:, 1])\n"
                "print(f\"LightGBM: validation AUC {auc_trees:.4f}\")",
}


def run_one(assignment: course_config.Assignment, python: Path, work: Path, parameters: dict,
            trees: str | None = None) -> dict:
    """Run the assignment's notebook alone in ``work/submitted/student/<a>/``, grade it, compare (``trees``: SUSY's
    tree ensemble made with XGBoost or LightGBM instead of scikit-learn)."""
    import nbformat

    from autograder.datasets.tasks import load_task
    from autograder.grading.execute import inject_parameters

    task = load_task(assignment, course_config.profile("quick"))
    data = work / "data"
    shutil.copytree(task.sandbox_data_dir(), data)
    task.close()

    folder = work / "submitted" / "student" / assignment.name
    folder.mkdir(parents=True)
    nb = nbformat.read(ROOT / "solutions" / assignment.name / assignment.notebook, as_version=4)
    if trees and assignment.name == "susy":
        from autograder.notebook import grade_id

        cell = next(c for c in nb.cells if grade_id(c) == "trees")
        cell.source = TREES[trees]
    inject_parameters(nb, parameters, "quick")
    nbformat.write(nb, folder / assignment.notebook)
    home = work / "home"
    home.mkdir()
    env = {"PATH": f"{python.parent}{os.pathsep}/usr/bin:/bin", "HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2",
           "COURSE_DATA_DIR": str(data), "MPLBACKEND": "Agg"}
    argv = [str(python), "-c", RUNNER, str(folder / assignment.notebook), str(work / "run.json"), str(folder)]
    ip = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    offline = bool(shutil.which("unshare") and ip and os.geteuid() == 0)
    if offline:  # a network namespace of its own, with only a loopback (the kernel talks to nbclient over it)
        argv = ["unshare", "--net", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh", *argv]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if not (work / "run.json").is_file():
        raise RuntimeError(f"the notebook runner failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    run = json.loads((work / "run.json").read_text())
    # The graded cells judge the saved files by the default profile's thresholds; this run trains as the quick
    # profile does, so a validation figure below them is the check cell's verdict, not a failure of the run.
    run["check_errors"] = [e for e in run["errors"] if (e["cell"] or "").startswith("check_")]
    stopped = [e for e in run["errors"] if e not in run["check_errors"]]
    if stopped and not run["error"]:
        run["error"] = f"{stopped[0]['error']} in cell {stopped[0]['cell']}"
    ran = nbformat.read(folder / assignment.notebook, as_version=4)
    left = sorted(p.name for p in folder.iterdir())
    tree_file = {"xgboost": "susy_trees.json", "lightgbm": "susy_trees.txt"}.get(trees or "")
    expected = sorted([assignment.notebook] + [tree_file if tree_file and spec.name == "trees" else spec.file
                                               for spec in assignment.models])
    grade = subprocess.run([sys.executable, "-m", "autograder", "grade", assignment.name, str(work / "submitted"),
                            "--out", str(work / "out"), "--profile", "quick"], capture_output=True, text=True,
                           cwd=ROOT)
    if grade.returncode != 0:
        raise RuntimeError(f"autograder grade failed:\n{grade.stdout[-2000:]}{grade.stderr[-2000:]}")
    record = json.loads((work / "out" / "student" / assignment.name / "grading.json").read_text())
    lines = hand_in_lines(ran)
    from autograder.model_checks import ARCHITECTURE

    said, predicted = {}, {}
    for line in lines:
        m = re.match(r"\s*([✓✗~?]) (\w+) \((?:([\d.]+) of [\d.]+ pt|[\d.]+ pt, not judged here)", line)
        if m and m.group(2) in ARCHITECTURE:
            said[m.group(2)] = m.group(1) == "✓"
        if m and m.group(3) is not None and "may fall on either side" not in line:
            predicted[m.group(2)] = float(m.group(3))
    graded = {c["id"]: c["score"] == c["points"] for c in record["checks"] if c["id"] in said}
    scores = {c["id"]: c["score"] for c in record["checks"] if c["id"] in predicted}
    agreement = [line.strip() for line in lines if "agrees with your model" in line]
    return {
        "assignment": assignment.name, "run": run, "offline": bool(offline), "files": left,
        "only_notebook_and_models": left == expected, "check_cell": said, "grader": graded,
        "agree": said == graded and bool(said), "engine": agreement,
        # The points the check cell predicts (the default profile's thresholds) against the grader's (quick): they
        # agree on every check but metrics whose thresholds differ between the profiles.
        "predicted": predicted, "scores": scores,
        "engine_all": bool(agreement) and all(line.startswith("✓") for line in agreement),
        "score": record["score"], "max_score": record["max_score"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", default=",".join(course_config.ASSIGNMENTS))
    parser.add_argument("--python", type=Path, help="the interpreter to run the notebooks (default: the Colab-like venv)")
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--trees", choices=sorted(TREES), help="susy: make the tree ensemble with this library")
    parser.add_argument("--smoke", action="store_true", help="this venv's Python, mnist_dense, one epoch; docs/ untouched")
    args = parser.parse_args(argv)
    names = ["mnist_dense"] if args.smoke else args.assignments.split(",")
    python = Path(sys.executable) if args.smoke else (args.python or colab_like_python())
    rows = []
    for name in names:
        a = course_config.assignment(name)
        parameters = dict(a.parameters.get("quick", {}))
        if args.smoke:
            parameters["EPOCHS"] = 1
        with tempfile.TemporaryDirectory(prefix="notebook-only-") as tmp:
            row = run_one(a, python, Path(tmp), parameters, trees=args.trees)
        rows.append(row)
        run = row["run"]
        print(f"{name}: ran in {run['seconds']:.0f} s (Python {run['python']}, TensorFlow {run['tensorflow']}, Keras "
              f"{run['keras']}, NumPy {run['numpy']}; {'no network' if row['offline'] else 'network not removed'})"
              + (f"; ERROR {run['error']}" if run["error"] else ""))
        print(f"  folder afterwards: {', '.join(row['files'])}")
        for e in run["check_errors"]:
            print(f"  graded cell {e['cell']} (the default profile's thresholds): {' '.join(e['error'].split())}")
        print(f"  check cell {row['check_cell']} / grader {row['grader']}: {'agree' if row['agree'] else 'DISAGREE'}")
        print(f"  {'; '.join(row['engine']) or 'no engine comparison printed'}")
        print(f"  grader: {row['score']:g} / {row['max_score']:g} (quick profile)")
        print(f"  check cell's predicted points (the default profile's thresholds): {row['predicted']}; the grader's "
              f"(quick): {row['scores']}")
    ok = all(not r["run"]["error"] and r["agree"] and r["engine_all"] and r["only_notebook_and_models"] for r in rows)
    print(f"notebook-only release: {sum(1 for r in rows if not r['run']['error'])} of {len(rows)} ran top to bottom; "
          f"check cell and grader {'agree on every check' if ok else 'DO NOT agree everywhere'}")
    if not args.smoke:
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        lines = [f"# A released notebook alone, as on Colab ({when})", "",
                 f"Machine: {describe_machine()} (the grader). `python bench/notebook_only.py`; see its docstring.", "",
                 "| assignment | run | Python / TensorFlow / Keras / NumPy | network | folder afterwards | "
                 "check cell = grader | engine | grade (quick) |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            run = r["run"]
            ran = "error: " + run["error"][:80] if run["error"] else f"{run['seconds']:.0f} s"
            lines.append(f"| {r['assignment']} | {ran} | "
                         f"{run['python']} / {run['tensorflow']} / {run['keras']} / {run['numpy']} | "
                         f"{'none' if r['offline'] else 'present'} | {', '.join(r['files'])} | "
                         f"{'yes' if r['agree'] else 'NO'} ({sum(r['check_cell'].values())} of {len(r['check_cell'])} passed) | "
                         f"{'; '.join(e.lstrip('✓~✗ ') for e in r['engine'])} | {r['score']:g} / {r['max_score']:g} |")
        notes = [f"- {r['assignment']}, graded cell `{e['cell']}`: {' '.join(e['error'].split())}"
                 for r in rows for e in r["run"]["check_errors"]]
        if notes:
            lines += ["", "Graded cells that raised (they judge the saved files by the default profile's thresholds, "
                      "while this run trains as the quick profile does; the grader above grades by the quick one):", "",
                      *notes]
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
