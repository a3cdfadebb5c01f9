"""Grading on a real Slurm (tests/slurm.py: Debian's slurm-wlm and munge, a loopback-only network namespace).

The README's Slurm recipe, as written but for the site's names (partition, paths, no GPUs, two small jobs),
serves the cluster; ``autograder grade --cluster grading-cluster.json`` grades a class on it while one worker
job is cancelled mid-batch (serve replaces it) and a late worker job from a kit with other course facts
joins (refused: nothing of it kept). The results are the local pool's. A wrong partition is said by serve
in sbatch's words. Skips, saying so, where a real Slurm cannot run (not root, no packages); fails in CI.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import course_config
from autograder import batch
from autograder.results import RECORD_FILE, load_records
from tests.helpers import make_submission
from tests.slurm import single_node_slurm, skip_reason, wait_until
from tests.test_batch import comparable
from tests.test_cluster import ROOT, other_course, readme_examples, slow_model  # noqa: F401 (a fixture)

A = course_config.MNIST_DENSE
PYTHON = sys.executable


@pytest.fixture(scope="module")
def slurm_ready():
    reason = skip_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the real Slurm test: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def klass(tmp_path_factory, models_dir, slow_model):  # noqa: F811
    """Six students: two quick submissions, four graded through Keras (seconds each), so the batch lasts."""
    root = tmp_path_factory.mktemp("submitted")
    make_submission(root, "s0", A.name, {A.model_file: models_dir / "dense.keras"})
    make_submission(root, "s1", A.name, {A.model_file: models_dir / "no_softmax.keras"})
    for i in range(2, 6):
        make_submission(root, f"s{i}", A.name, {A.model_file: slow_model})
    return root


@pytest.fixture
def short_dir():
    """A folder with a short path: Slurm's job sockets live under it (108 bytes at most)."""
    path = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def recipe(credentials: Path, queue: str = "debug") -> str:
    """The README's Slurm recipe with this machine's names: partition, the kit and its data, small jobs, no GPUs."""
    code, _ = readme_examples()[0]
    data = os.environ.get("COURSE_DATA_DIR", "")
    for old, new in [('queue="gpu", cores=8, processes=1, memory="32GB"', f'queue="{queue}", cores=1, processes=1, '
                                                                           'memory="3GB"'),
                     ('"/shared/ml4phys/kit/.venv/bin/python"', repr(PYTHON)),
                     ('"export COURSE_DATA_DIR=/shared/ml4phys/data"', repr(f"export COURSE_DATA_DIR={data}")),
                     ('"cd /shared/ml4phys/kit"', repr(f"cd {ROOT}")),
                     ('job_extra_directives=["--gres=gpu:1"],', ""),
                     ('"--resources", "GPU=1", ', ""),
                     ("serve(cluster, jobs=4, credentials=\"grading-cluster.json\")",
                      f"serve(cluster, jobs=2, credentials={str(credentials)!r})")]:
        assert old in code, f"the README's recipe no longer says {old}"
        code = code.replace(old, new)
    return code


def records(out: Path) -> dict:
    return {r.student: comparable(r) for r in load_records(out, A.name)}


@pytest.mark.slow
def test_a_real_slurm_grades_as_the_local_pool_through_a_cancelled_job_and_a_late_stranger(slurm_ready, klass,
                                                                                          short_dir, tmp_path):
    pool = {r.student: comparable(r) for r in batch.grade(A.name, klass, tmp_path / "pool", profile_name="quick",
                                                           workers=2).results}
    home, out = tmp_path / "home", tmp_path / "out"
    home.mkdir()
    credentials = home / "grading-cluster.json"
    (tmp_path / "recipe.py").write_text(recipe(credentials))
    (tmp_path / "wrong.py").write_text(recipe(credentials, queue="nonexistent"))
    stranger = other_course(tmp_path, "\nLIMITS = Limits(**{**LIMITS.__dict__, 'max_submission_mb': "
                                      "LIMITS.max_submission_mb + 1})\n")
    with single_node_slurm(short_dir, cpus=4) as slurm:
        # serve, from the login node: HOME is where dask-jobqueue puts the workers' certificates (shared_temp_directory)
        env = {**slurm.env, "HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT),
               "DASK_DISTRIBUTED__DEPLOY__LOST_WORKER_TIMEOUT": "2s"}
        serve_log = tmp_path / "serve.log"
        with open(serve_log, "w") as log:
            server = slurm.popen([PYTHON, tmp_path / "recipe.py"], env=env, cwd=tmp_path, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: credentials.exists() and len(re.findall(r" joined at ", serve_log.read_text())) >= 2, 120,
                 lambda: f"serve did not start two workers:\n{serve_log.read_text()}\n{slurm.logs()}")
            assert oct(credentials.stat().st_mode & 0o777) == "0o600"
            assert f"grade with: autograder grade ASSIGNMENT submitted --out graded --cluster {credentials}" in \
                serve_log.read_text()
            first_jobs = set(slurm.jobs())
            assert len(first_jobs) == 2
            grader_log = tmp_path / "grader.log"
            with open(grader_log, "w") as log:
                grader = slurm.popen([PYTHON, "-m", "autograder", "grade", A.name, klass, "--out", out, "--profile",
                                      "quick", "--cluster", credentials], env=env, stdout=log, stderr=subprocess.STDOUT)
            wait_until(lambda: list(out.glob(f"*/{A.name}/{RECORD_FILE}")) or grader.poll() is not None, 300,
                 lambda: f"no result:\n{grader_log.read_text()}")
            slurm.cancel(sorted(first_jobs)[0])  # a worker job, mid-batch
            address = json.loads(credentials.read_text())["address"]
            pem = {key: next(home.glob(f".dask-jobqueue.worker.{key}.*")) for key in ("ca_file", "cert", "key")}
            late = slurm.run(["sbatch", "--parsable", "-p", "debug", "--mem=2G", "-o", tmp_path / "stranger-%j.out",
                              "--wrap",
                              f"export PYTHONPATH={stranger}; cd {stranger}; exec {PYTHON} -m distributed.cli.dask_worker "
                              f"{address} --nthreads 1 --dashboard-address 127.0.0.1:0 --protocol tls:// --tls-ca-file "
                              f"{pem['ca_file']} --tls-cert {pem['cert']} --tls-key {pem['key']}"],
                             env=env, capture_output=True, text=True, check=True).stdout.strip()
            assert grader.wait(timeout=600) == 0, grader_log.read_text()
            text = grader_log.read_text()
            assert "REFUSED worker tls://" in text and "grades mnist_dense by other course facts" in text, (
                f"the stranger (job {late}) should have joined while the batch ran:\n{text}")
            # serve said the cancelled job's worker left, and a replacement joined
            wait_until(lambda: "left (job ended, cancelled or lost)" in serve_log.read_text()
                 and len(re.findall(r" joined at ", serve_log.read_text())) >= 3, 120,
                 lambda: f"no replacement job:\n{serve_log.read_text()}")
            assert records(out) == pool
            graders = {r.extra["grader"]["worker"] for r in load_records(out, A.name)}
            refused = set(re.findall(r"REFUSED worker (tls://\S+)", text))
            assert graders and not graders & refused
            again = slurm.run([PYTHON, "-m", "autograder", "grade", A.name, klass, "--out", out, "--profile", "quick",
                               "--cluster", credentials], env=env, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0 and "0 to grade, 6 unchanged" in again.stderr, again.stderr
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGINT)  # Ctrl-C: serve cancels its jobs and removes the credentials
            code = server.wait(timeout=120)
        assert code == 0 and "stopping the worker jobs" in serve_log.read_text(), serve_log.read_text()
        assert not credentials.exists()
        wait_until(lambda: set(slurm.jobs()) <= {late}, 60, lambda: f"serve's jobs are still queued: {slurm.jobs()}")
        # A partition the batch system does not have: said in sbatch's words, no traceback, nothing left queued.
        slurm.cancel(late)
        wrong = slurm.run([PYTHON, tmp_path / "wrong.py"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
        assert wrong.returncode != 0
        assert "serve: the batch system refused a worker job: sbatch: error: invalid partition specified: " \
               "nonexistent" in wrong.stderr, wrong.stderr
        assert "Traceback" not in wrong.stderr + wrong.stdout
        wait_until(lambda: not slurm.jobs(), 60, lambda: f"jobs left: {slurm.jobs()}")
