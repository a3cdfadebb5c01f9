"""nbgrader's own tools after grading: the exchange, formgrader in a real browser, and feedback.

A real nbgrader course with an exchange in a scratch folder: the instructor releases mnist_dense, a
student fetches it, adds a model and submits, the instructor collects, `autograder grade --gradebook`
grades; then formgrader (a real Jupyter server on 127.0.0.1, driven by Playwright with Debian's
chromium) lists the submission, shows our scores, takes a manual score that `autograder gradebook`
keeps, and its Autograde button records the same scores (the course's nbgrader_config.py loads the
kit); `nbgrader release_feedback` delivers our feedback page and `nbgrader fetch_feedback` finds it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import course_config
from tests import browser

pytestmark = [pytest.mark.slow, pytest.mark.browser]
A = course_config.MNIST_DENSE
BIN = Path(sys.executable).parent
TOKEN = "round-trip-token"
WAIT_MS = 180_000  # an upper bound for a page or an answer, on a machine busy with other work; never a budget
STUDENT = pwd.getpwuid(os.getuid()).pw_name  # nbgrader's exchange names a submission after the user who submits


def nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(BIN / "nbgrader"), *args, "--log-level=WARN"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory, models_dir):
    """A course after one student's submission was collected and graded with --gradebook."""
    root = tmp_path_factory.mktemp("nbgrader")
    course, exchange, home = root / "course", root / "exchange", root / "ada"
    for folder in (course, exchange, home):
        folder.mkdir()
    exchange.chmod(0o777)
    config = (f'c = get_config()\nc.CourseDirectory.course_id = "ml4phys"\nc.CourseDirectory.root = "{course}"\n'
              f'c.Exchange.root = "{exchange}"\n')
    # The instructor's side loads the kit (as the course's own nbgrader_config.py does); the student's does not.
    kit = ("from autograder.nbgrader_plugins import configure\n" + config + "configure(c)\n"
           'c.GradeWithKit.profile = "quick"\n')
    (course / "nbgrader_config.py").write_text(kit)
    (home / "nbgrader_config.py").write_text(config)
    shutil.copytree(course_config.COURSE_DIR / "source" / A.name, course / "source" / A.name,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nbgrader("generate_assignment", A.name, cwd=course)
    nbgrader("release_assignment", A.name, cwd=course)
    nbgrader("fetch_assignment", A.name, "--course", "ml4phys", cwd=home)
    shutil.copyfile(models_dir / "dense.keras", home / A.name / A.model_file)
    nbgrader("submit", A.name, "--course", "ml4phys", cwd=home)
    nbgrader("collect", A.name, cwd=course)
    assert (course / "submitted" / STUDENT / A.name / "timestamp.txt").is_file()
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", A.name, str(course / "submitted"),
                           "--out", str(course / "graded"), "--profile", "quick", "--gradebook",
                           str(course / "gradebook.db")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"course": course, "home": home}


def gradebook_grade(course: Path, check: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "ml4phys") as gb:
        g = gb.find_grade(f"check_{check}", Path(A.notebook).stem, A.name, STUDENT)
        return g.auto_score, g.manual_score, g.score


@pytest.fixture
def formgrader(course):
    """A Jupyter server with nbgrader's formgrader for the course, on 127.0.0.1 only: its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(course["course"].parent / "jupyter"),
           "JUPYTER_RUNTIME_DIR": str(course["course"].parent / "runtime")}
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "server", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--ServerApp.token={TOKEN}", "--ServerApp.open_browser=False", "--allow-root",
         f"--ServerApp.root_dir={course['course']}"],
        cwd=course["course"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("the Jupyter server did not start")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_formgrader_lists_shows_and_takes_a_manual_score(course, formgrader):
    with browser.launch() as chromium:
        context = chromium.new_context(extra_http_headers={"Authorization": f"token {TOKEN}"})
        page = context.new_page()
        page.goto(f"{formgrader}/formgrader/gradebook/{A.name}/{Path(A.notebook).stem}", wait_until="networkidle",
                  timeout=WAIT_MS)
        page.wait_for_selector("a[href*='/formgrader/submissions/']", timeout=WAIT_MS)
        table = page.inner_text("table")
        assert "Submission #1" in table and "/ 10" in table  # the submission table lists the student
        page.click("a[href*='/formgrader/submissions/'] >> nth=0")
        page.wait_for_selector("#check_hidden_layer", timeout=WAIT_MS)
        # formgrader's script binds the score fields once it has fetched the grades: wait for that, or a
        # score typed before it is never saved
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        text = page.inner_text("body")
        assert "1 / 1 points: passed" in text  # our score and message in the check cells
        assert "test accuracy" in text
        page.fill("#check_hidden_layer", "0.5")  # a TA overrides a check
        # The page saves the score with a PUT to formgrader's API: wait for its answer, not for a fixed time
        # (a busy machine answers late).
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT",
                                  timeout=WAIT_MS) as saved:
            page.press("#check_hidden_layer", "Tab")
        assert saved.value.ok, saved.value.status
        context.close()
    assert gradebook_grade(course["course"], "hidden_layer")[1] == 0.5
    proc = subprocess.run([sys.executable, "-m", "autograder", "gradebook", A.name, "--out",
                           str(course["course"] / "graded"), "--course", str(course["course"])],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    auto, manual, score = gradebook_grade(course["course"], "hidden_layer")
    assert (auto, manual, score) == (1.0, 0.5, 0.5)  # the TA's score survives a rewrite


def auto_scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "ml4phys") as gb:
        return {c.id: gb.find_grade(f"check_{c.id}", Path(A.notebook).stem, A.name, STUDENT).auto_score
                for c in A.checks}


def test_formgrader_autograde_button_records_the_kits_scores(course, formgrader):
    """formgrader's Autograde button, pressed after `autograder grade --gradebook`, keeps the kit's scores."""
    before = auto_scores(course["course"])
    assert before["output_layer"] == 1.0
    with browser.launch() as chromium:
        context = chromium.new_context(extra_http_headers={"Authorization": f"token {TOKEN}"})
        page = context.new_page()
        page.goto(f"{formgrader}/formgrader/manage_submissions/{A.name}", wait_until="networkidle", timeout=WAIT_MS)
        page.wait_for_selector("td.autograde a", timeout=WAIT_MS)
        with page.expect_response(lambda r: r.url.endswith("/autograde") and r.request.method == "POST",
                                  timeout=WAIT_MS) as answered:
            page.click("td.autograde a")
        assert answered.value.ok and answered.value.json()["success"], answered.value.text()
        context.close()
    assert auto_scores(course["course"]) == before
    graded = course["course"] / "autograded" / STUDENT / A.name / A.notebook
    assert '"autograder"' in graded.read_text()  # the notebook carries the kit's record (for the feedback page)


def test_feedback_reaches_the_student_through_the_exchange(course):
    home, root = course["home"], course["course"]
    nbgrader("release_feedback", A.name, cwd=root)
    nbgrader("fetch_feedback", A.name, "--course", "ml4phys", cwd=home)
    (page,) = (home / A.name / "feedback").glob(f"*/{Path(A.notebook).stem}.html")
    ours = (root / "graded" / STUDENT / A.name / "feedback.html").read_text()
    if gradebook_grade(root, "hidden_layer")[1] is None:
        assert page.read_text() == ours  # the student receives our feedback page
    assert "BEGIN HIDDEN TESTS" not in page.read_text() and "is scored by" not in page.read_text()
    nbgrader("generate_feedback", A.name, "--force", cwd=root)  # nbgrader's own button writes the same page
    assert (root / "feedback" / STUDENT / A.name / f"{Path(A.notebook).stem}.html").read_text() == page.read_text()
    if gradebook_grade(root, "hidden_layer")[1] is not None:  # a TA's score (the formgrader test): the page says so
        assert "Your TA set this check&#x27;s score to 0.5 of 1 points" in page.read_text()
