"""The real Slurm of tests/slurm.py: jobs run as submitted, reach the namespace's 127.0.0.1, and are cancelled."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.slurm import single_node_slurm, skip_reason, wait_until

FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())"
LISTENING = ("import psutil, sys; print(sorted(c.laddr.port for c in psutil.Process(int(sys.argv[1])).net_connections()"
             " if c.status == 'LISTEN'))")


def test_jobs_run_reach_the_namespace_and_are_cancelled(tmp_path):
    if reason := skip_reason():
        pytest.skip(reason)
    token, value = secrets.token_hex(8), secrets.token_hex(8)
    www, work = tmp_path / "www", tmp_path / "work"
    www.mkdir()
    work.mkdir()
    (www / "token.txt").write_text(token)
    (work / "fetch.py").write_text(FETCH)
    with single_node_slurm(tmp_path) as slurm:
        # A server inside the namespace, on 127.0.0.1 only: the job fetches its token.
        server = slurm.popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"], cwd=www,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = int(server.stdout.readline().split(" port ")[1].split()[0])
            wrap = (f"hostname > result.txt && pwd >> result.txt && echo \"$SUBMITTED_VALUE\" >> result.txt"
                    f" && {sys.executable} fetch.py http://127.0.0.1:{port}/token.txt >> result.txt")
            submit = slurm.run(["sbatch", "--parsable", "--wrap", wrap], cwd=work, capture_output=True, text=True,
                               env={**slurm.env, "SUBMITTED_VALUE": value}, check=True)
            job = submit.stdout.strip()
            wait_until(lambda: job not in slurm.jobs(), 60, lambda: f"job {job} queued: {slurm.jobs()}\n{slurm.logs()}")
        finally:
            server.kill()
            server.wait()
        output = "".join(path.read_text() for path in work.glob("slurm-*.out"))
        result = (work / "result.txt").read_text().splitlines() if (work / "result.txt").exists() else output
        assert result == [socket.gethostname().split(".")[0], str(work), value, token], output

        # A job that would sleep for ten minutes, cancelled.
        submit = slurm.run(["sbatch", "--parsable", "--wrap", "sleep 600"], cwd=work, capture_output=True, text=True,
                           check=True)
        job = submit.stdout.strip()
        wait_until(lambda: slurm.jobs().get(job) == "RUNNING", 60, lambda: f"job {job} not running: {slurm.jobs()}")
        slurm.cancel(job)
        wait_until(lambda: job not in slurm.jobs(), 30, lambda: f"job {job} queued after scancel: {slurm.jobs()}")

        # slurmctld listens inside the namespace; the machine's network shows no socket of it.
        ping = slurm.run(["scontrol", "ping"], capture_output=True, text=True)
        assert "is UP" in ping.stdout, ping
        ctld = slurm.daemons["slurmctld"].pid
        inside = slurm.run([sys.executable, "-c", LISTENING, str(ctld)], capture_output=True, text=True, check=True)
        assert "6817" in inside.stdout, inside
        assert psutil.Process(ctld).net_connections() == []
    assert not Path(slurm.netns).exists()
    assert all(daemon.poll() is not None for daemon in slurm.daemons.values())
    assert slurm.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
