"""The corpus: every broken, resource-hungry and hostile case graded in real batches, with its outcome.

Each case must end with: the batch completes, zero for what it did not earn with a clear message (never
an internal grader error), no other student's result changes, the course folder unchanged, the grading
machine's free memory and disk back where they were, and no test label visible inside the sandbox.
Limits are made small for the run (course_config is patched in this process; the batch hands the
patched profile and limits to its two worker processes) so that the resource cases end in seconds.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import course_config
from autograder import batch
from autograder.course_data import DATA_DIR_ENV
from autograder.grading import execute
from autograder.results import RECORD_FILE
from tests import corpus
from tests.helpers import Descendants, assert_given_back, grader_footprint, make_submission

pytestmark = pytest.mark.slow
SERVER = socket.socket()
SERVER.bind(("127.0.0.1", 0))
SERVER.listen(8)
CASES = corpus.cases(SERVER.getsockname()[1])
HONEST = "honest-student"


def course_state() -> str:
    """A digest of every file of the course folder that git tracks or sees (ignored build output aside)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=course_config.COURSE_DIR,
                           capture_output=True, text=True, check=True).stdout.split()
    h = hashlib.sha256()
    for name in sorted(files):
        path = course_config.COURSE_DIR / name
        h.update(name.encode() + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()


def leftover_processes() -> list[str]:
    out = subprocess.run(["pgrep", "-af", "sleep 1234"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.fixture(scope="module")
def graded(tmp_path_factory, mnist, models_dir, susy_models):
    root = tmp_path_factory.mktemp("corpus")
    corpus.PICKLE_MARKER.unlink(missing_ok=True)
    models = corpus.model_files(tmp_path_factory.mktemp("corpus_models"), mnist, models_dir, susy_models)
    by_mode = {"saved": {}, "execute": {}}
    for case in CASES:
        folder = make_submission(root / case.mode, case.student, case.assignment, {})
        case.build(folder, models)
        by_mode[case.mode].setdefault(case.assignment, []).append(case.student)
    make_submission(root / "saved", HONEST, "mnist_dense", {"mnist_dense.keras": models["dense"]})
    by_mode["saved"]["mnist_dense"].append(HONEST)
    alone = batch.grade("mnist_dense", root / "saved", root / "alone", students=[HONEST], workers=1,
                        profile_name="quick", log=sys.stdout).results[0]

    quick = course_config.PROFILES["quick"]
    patch = pytest.MonkeyPatch()
    patch.setitem(course_config.PROFILES, "quick", dataclasses.replace(
        quick, execute_time_limit_s=corpus.TIME_LIMIT_S, memory_limit_mb=corpus.MEMORY_LIMIT_MB))
    patch.setattr(course_config, "LIMITS", dataclasses.replace(
        course_config.LIMITS, disk_limit_mb=corpus.DISK_LIMIT_MB, tmp_limit_mb=corpus.TMP_LIMIT_MB,
        max_processes=corpus.MAX_PROCESSES))
    before = course_state(), grader_footprint()
    start = time.monotonic()
    try:
        reports = {}
        with Descendants() as grader:  # the batch's worker processes: what they leave is this test's to judge
            for mode, assignments in by_mode.items():
                for report in batch.grade_assignments(assignments, root / mode, root / f"out-{mode}", workers=2,
                                                      execute=mode == "execute", profile_name="quick", log=sys.stdout):
                    reports.update({(mode, r.student): r for r in report.results})
    finally:
        patch.undo()
    time.sleep(4)  # the leftover-processes case's late writer would have written by now
    after = course_state(), grader_footprint()
    print(f"corpus: {len(CASES)} cases graded in {time.monotonic() - start:.0f} s")
    return {"root": root, "results": reports, "alone": alone, "before": before, "after": after, "grader": grader.pids}


def feedback(result) -> str:
    return "\n".join([result.output] + [c.output for c in result.checks])


@pytest.mark.parametrize("case", CASES, ids=[c.student for c in CASES])
def test_case_scores_zero_where_unearned_with_a_clear_message(case, graded):
    result = graded["results"][(case.mode, case.student)]
    text = feedback(result)
    assert "internal grader error" not in text.lower(), text
    zero = [c.id for c in result.checks] if case.zero == "all" else list(case.zero)
    scores = {c.id: c.score for c in result.checks}
    assert all(scores[check] == 0 for check in zero), (scores, text)
    assert re.search(case.message, text), f"{case.message!r} not in:\n{text}"


def test_corpus_covers_every_assignment_and_category():
    assert len(CASES) >= 30
    assert {c.assignment for c in CASES} == set(course_config.ASSIGNMENTS)
    counts = {k: sum(c.category == k for c in CASES) for k in ("broken", "resource", "hostile")}
    assert min(counts.values()) >= 8, counts


def test_no_other_students_result_changes(graded):
    honest = graded["results"][("saved", HONEST)]
    assert [(c.id, c.score, c.output) for c in honest.checks] == [(c.id, c.score, c.output) for c in graded["alone"].checks]
    assert honest.score == honest.max_score or honest.score > 0


def test_course_folder_unchanged_and_machine_recovered(graded):
    (state_before, free_before), (state_after, free_after) = graded["before"], graded["after"]
    assert state_after == state_before
    assert_given_back(free_before, free_after, graded["grader"])
    assert leftover_processes() == []
    assert not corpus.PICKLE_MARKER.exists()  # the pickle that runs code when loaded was never loaded
    late = graded["root"] / "execute" / "leftover-processes" / "mnist_dense" / "late.txt"
    assert not late.exists()


def executed_text(graded, student: str, assignment: str) -> str:
    """Everything the student's cells printed when the grader re-executed the notebook (not their source)."""
    import nbformat

    path = graded["root"] / "out-execute" / student / assignment / execute.EXECUTED_NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) for c in nb.cells for o in c.get("outputs", []))


def test_no_label_value_is_visible_inside_the_sandbox(graded, mnist):
    text = executed_text(graded, "label-snooping", "mnist_dense")
    hashes = json.loads(re.search(r"SCAN-HASHES (\[.*?\])", text).group(1))
    files = json.loads(re.search(r"SCAN-FILES (\[.*?\])", text).group(1))
    assert any(f.startswith("/data/") for f in files)  # the scan did run and saw the training data
    (_, _), (_, y_test) = mnist
    secrets = {hashlib.sha256(y_test.astype(dtype).tobytes()).hexdigest() for dtype in ("uint8", "int32", "int64")}
    data = os.environ.get(DATA_DIR_ENV)
    if data and (Path(data) / "mnist.npz").is_file():
        secrets.add(hashlib.sha256((Path(data) / "mnist.npz").read_bytes()).hexdigest())
    assert not secrets & set(hashes)


def test_network_and_writes_outside_are_refused(graded):
    net = executed_text(graded, "network", "mnist_cnn")
    assert "refused 127.0.0.1" in net and "CONNECTED" not in net
    outside = executed_text(graded, "write-outside", "mnist_augment")
    wrote = re.findall(r"WROTE (\S+)", outside)
    assert "refused" in outside
    assert all(path.startswith("/tmp/") for path in wrote), wrote  # only its own private /tmp (its HOME)


def test_hostile_names_and_text_cannot_break_csv_html_or_markdown(graded):
    out = graded["root"] / "out-saved"
    with open(out / "grades.csv", newline="") as f:
        for row in csv.DictReader(f):
            assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values()), row
    html = (graded["root"] / "out-saved" / "<img src=x onerror=alert(1)>" / "mnist_dense" / "feedback.html").read_text()
    assert "<img src=x" not in html
    page = (graded["root"] / "out-execute" / "hostile-output-text" / "mnist_dense" / "feedback.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    md = (graded["root"] / "out-execute" / "hostile-output-text" / "mnist_dense" / "feedback.md").read_text()
    outside_code = re.sub(r"(?ms)^ *(`{3,})text\n.*?^ *\1$", "", md)
    assert "http://evil" in md and "http://evil" not in outside_code  # shown, but only inside code blocks


def test_results_are_recorded_for_every_case(graded):
    for case in CASES:
        record = graded["root"] / f"out-{case.mode}" / case.student / case.assignment / RECORD_FILE
        assert record.is_file(), case.student


def test_check_before_hand_in_agrees_with_the_grader_on_saved_cases(graded):
    """The broken and hostile saved files, checked as a student would before handing them in: for every check the
    check judges (a figure within its uncertainty of a tier aside), its predicted points are the grader's."""
    from autograder.course_check import check_saved_models, facts_of, validation_data
    from autograder.datasets.susy_sim import simulate

    compared = 0
    for case in [c for c in CASES if c.mode == "saved"]:
        a = course_config.assignment(case.assignment)
        facts = facts_of(a, "quick")
        x_val, y_val = simulate(20_000, seed=5) if a.dataset == "susy" else validation_data(facts)
        said = []
        reports = check_saved_models(facts, x_val=x_val, y_val=y_val, out=said.append,
                                     folder=graded["root"] / "saved" / case.student / case.assignment)
        grader = {c.id: c.score for c in graded["results"][("saved", case.student)].checks}
        for check_id, v in reports.verdicts().items():
            if v["judged"] and not v.get("borderline"):
                assert v["points"] == pytest.approx(grader[check_id]), (case.student, check_id, "\n".join(said))
                compared += 1
    assert compared >= 60
