"""Serving a batch system's Dask cluster to the grader (``serve(cluster, jobs=N)``) and its credentials file.

The TA builds the cluster with dask-jobqueue (``SLURMCluster``, ``HTCondorCluster``, ... with
``security=True``) on the login node and hands it to :func:`serve`, which

- refuses a cluster open to the network: a scheduler without TLS (anyone who reaches it could run code
  as the grading account, on workers that hold the hidden test labels), or a dashboard (scheduler's or
  workers') listening beyond 127.0.0.1;
- submits the worker jobs and says at once, in the batch system's own words, why a job was refused
  (a wrong queue, ``--gres`` line or account), instead of a traceback in a log;
- writes the credentials file ``autograder grade --cluster FILE`` connects with: the scheduler's address
  and the TLS client certificate, key and CA, readable by the TA only;
- keeps ``jobs`` worker jobs: a job cancelled, timed out or lost is replaced; joins and departures are
  said as they happen, until Ctrl-C stops the workers.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

CREDENTIALS_FORMAT = "ml4phys-dask-credentials/1"
POLL_S = 5  # how often serve looks at the workers
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def write_credentials(path: Path, address: str, security) -> Path:
    """Write the scheduler's address and the client's TLS credentials (PEM text) to ``path``, readable by its owner only."""
    tls = security.get_tls_config_for_role("client")
    pem = {}
    for key in ("ca_file", "cert", "key"):
        value = tls.get(key)
        if not value:
            raise ValueError(f"the cluster's security has no client {key}: create the cluster with security=True")
        pem[key] = value if "-----BEGIN" in value else Path(value).expanduser().read_text()
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"format": CREDENTIALS_FORMAT, "address": address, "tls": pem}, f, indent=1)
    os.replace(tmp, path)
    return path


def read_credentials(path: Path):
    """The scheduler's address and a ``distributed.Security`` from a credentials file made by :func:`write_credentials`."""
    from distributed import Security

    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ValueError(f"--cluster {path}: no such credentials file (serve(cluster, ...) writes it; or give "
                         "local:N or the scheduler's tls:// address)") from exc
    except (OSError, ValueError) as exc:
        raise ValueError(f"--cluster {path}: not a credentials file written by serve(cluster, ...) ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != CREDENTIALS_FORMAT or not isinstance(data.get("tls"), dict):
        raise ValueError(f"--cluster {path}: not a credentials file written by serve(cluster, ...)")
    if path.stat().st_mode & 0o077:
        raise ValueError(f"--cluster {path}: the credentials file is readable by others (chmod 600 {path}); anyone who "
                         "holds it can run code on the grading workers")
    tls = data["tls"]
    security = Security(require_encryption=True, tls_ca_file=tls["ca_file"], tls_client_cert=tls["cert"],
                        tls_client_key=tls["key"])
    return data["address"], security


def exposure_problems(cluster) -> list[str]:
    """Why ``cluster`` is open to the network: a scheduler without TLS, a dashboard beyond 127.0.0.1."""
    import re

    problems = []
    if not cluster.scheduler_address.startswith("tls://"):
        problems.append(f"the scheduler {cluster.scheduler_address} is not encrypted: create the cluster with "
                        "security=True (and shared_temp_directory=\"~\")")
    server = getattr(getattr(cluster, "scheduler", None), "http_server", None)
    for sock in getattr(server, "_sockets", {}).values():
        host = sock.getsockname()[0]
        if host not in LOOPBACK:
            problems.append(f"the scheduler's dashboard listens on {host}:{sock.getsockname()[1]}, open to the network: "
                            'pass scheduler_options={..., "dashboard_address": "127.0.0.1:8787"}')
    script = cluster.job_script()
    if "dask_worker" in script or "dask-worker" in script or "dask worker" in script:
        found = re.search(r"--dashboard-address[ =](\S+)", script)
        if not found or found.group(1).rsplit(":", 1)[0].strip("[]") not in LOOPBACK:
            problems.append("each worker's HTTP server would listen on every interface: add "
                            'worker_extra_args=[..., "--dashboard-address", "127.0.0.1:0"]')
    return problems


def submission_error(exc: BaseException) -> str:
    """The batch system's own words from a failed job submission (dask-jobqueue puts its stderr in the exception)."""
    text = str(exc)
    if "stderr:" in text:
        text = text.split("stderr:", 1)[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:5]) or type(exc).__name__


class Keeper:
    """Keeps ``jobs`` worker jobs of a dask-jobqueue cluster submitted, replacing those whose worker left."""

    def __init__(self, cluster, jobs: int, log):
        self.cluster, self.jobs, self.log = cluster, jobs, log
        self.seen: dict[str, str] = {}  # worker address -> job name, as last seen

    def forget_failed(self) -> None:
        """Drop the jobs whose submission failed (never started: the next submit tries again, close skips them)."""
        for name, job in list(self.cluster.workers.items()):
            if getattr(job, "job_id", "") is None:
                del self.cluster.workers[name]
                self.cluster._created.discard(job)  # SpecCluster.close asserts that each job it made has stopped

    def submit(self) -> None:
        """Submit jobs up to the target; raise RuntimeError with the batch system's message if one is refused."""
        cluster = self.cluster
        self.forget_failed()
        while len(cluster.worker_spec) < self.jobs:
            cluster.worker_spec.update(cluster.new_worker_spec())
        try:
            cluster.sync(cluster._correct_state)
        except Exception as exc:
            raise RuntimeError(f"the batch system refused a worker job: {submission_error(exc)}") from exc

    def job_id(self, name: str) -> str:
        job = self.cluster.workers.get(name)
        return f" (job {job.job_id})" if getattr(job, "job_id", None) else ""

    def look(self) -> None:
        """Say which workers joined and left since the last look; submit replacements for those that left."""
        now = {addr: str(info.get("name")) for addr, info in self.cluster.scheduler_info["workers"].items()}
        for addr, name in now.items():
            if addr not in self.seen:
                whose = self.job_id(name) if name in self.cluster.worker_spec else " (not one of serve's jobs)"
                print(f"{time.strftime('%H:%M:%S')} worker {name}{whose} joined at {addr}", file=self.log, flush=True)
        left = [(addr, name) for addr, name in self.seen.items() if addr not in now]
        for addr, name in left:
            print(f"{time.strftime('%H:%M:%S')} worker {name} at {addr} left (job ended, cancelled or lost); a "
                  "replacement job is submitted once the batch system has let it go", file=self.log, flush=True)
        self.seen = now
        try:
            self.submit()
        except RuntimeError as exc:  # said, and tried again at the next look
            print(f"{time.strftime('%H:%M:%S')} {exc}; trying again in {POLL_S} s", file=self.log, flush=True)


def serve(cluster, jobs: int, credentials: str | Path = "grading-cluster.json", *, insecure: bool = False,
          log=sys.stdout) -> None:
    """Keep ``jobs`` worker jobs of ``cluster`` (dask-jobqueue) for the grader, until Ctrl-C; see the module docstring."""
    if jobs < 1:
        raise ValueError("serve: give jobs >= 1")
    problems = [] if insecure else exposure_problems(cluster)
    if problems:
        cluster.close()
        sys.exit("serve: this cluster is open to the network, so nothing was submitted:\n  " + "\n  ".join(problems))
    keeper = Keeper(cluster, jobs, log)
    try:
        keeper.submit()
    except RuntimeError as exc:
        script = cluster.job_script()
        keeper.forget_failed()
        cluster.close()
        sys.exit(f"serve: {exc}\nThe job script:\n{script}")
    path = None
    if cluster.scheduler_address.startswith("tls://"):
        path = write_credentials(Path(credentials), cluster.scheduler_address, cluster.security)
    where = f"--cluster {path}" if path else f"--cluster {cluster.scheduler_address} --insecure"
    print(f"scheduler {cluster.scheduler_address}; {jobs} worker job(s) submitted\n"
          + (f"credentials: {path} (readable by you only)\n" if path else "")
          + f"grade with: autograder grade ASSIGNMENT submitted --out graded {where}\n"
          + (f"dashboard: {cluster.dashboard_link} (this machine only)\n" if getattr(cluster, "dashboard_link", "") else "")
          + "Ctrl-C stops the workers", file=log, flush=True)
    # Ctrl-C and a TERM stop the workers. (Importing dask_jobqueue makes SIGINT exit at once, without cleaning up.)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        while True:
            time.sleep(POLL_S)
            keeper.look()
    except KeyboardInterrupt:
        print("stopping the worker jobs", file=log, flush=True)
    finally:
        keeper.forget_failed()
        cluster.close()
        if path is not None:
            path.unlink(missing_ok=True)
