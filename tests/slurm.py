"""A real one-node Slurm for tests, in a network namespace of its own that only has a loopback interface.

Debian's packages (``slurm-wlm`` 22.05 and ``munge``, installed by ``make system-tools``) provide the daemons;
:func:`single_node_slurm` starts its own munged, slurmctld and slurmd as child processes, with a generated
slurm.conf, munge key, state, spool and logs under the test's folder, nothing under /etc or /var. slurmctld
and slurmd listen on every interface of their network namespace, which has only its loopback interface:
nothing of them is reachable from the machine's network, and several pytest-xdist workers can each run one
(the namespace has a unique name). Commands run inside the namespace with ``nsenter --net=`` (not ``ip netns
exec``, which remounts /sys and so hides the control groups that the grading sandbox needs inside jobs); a
job's processes are in it too, so a job reaches the test's servers on 127.0.0.1 and a scheduler started there
reaches the job's.

Used as::

    if reason := skip_reason():
        pytest.skip(reason)
    with single_node_slurm(tmp_path) as slurm:
        job = slurm.run(["sbatch", "--parsable", "--wrap", "sleep 60"], capture_output=True, text=True).stdout
        slurm.jobs()  # {"1": "RUNNING"}
        slurm.cancel(job.strip())
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = (*DAEMONS, "sbatch", "squeue", "scancel", "sinfo", "nsenter", "ip")
_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
START_TIMEOUT = 60  # seconds until the node is idle; it takes about 1 here

SLURM_CONF = """\
ClusterName=harness
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0  # start a batch job at once, not up to 3 s later
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def wait_until(predicate, timeout: float, what):
    """Wait until ``predicate()`` holds and return its value; fail with ``what()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what()} after {timeout:.0f} s"
        time.sleep(0.2)
    return value


def _missing_commands() -> list[str]:
    return [name for name in COMMANDS if shutil.which(name, path=_PATH) is None]


@functools.cache
def skip_reason() -> str | None:
    """Why a real Slurm cannot run here (not root, a command missing, no network namespace), else None."""
    if os.geteuid() != 0:
        return "a real Slurm needs root (network namespace, daemons running as root)"
    if missing := _missing_commands():
        return f"not installed: {', '.join(missing)} (make system-tools installs slurm-wlm and munge)"
    name = f"slurm-probe-{os.getpid()}-{secrets.token_hex(3)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


@dataclass
class SlurmNode:
    """A running one-node Slurm: its namespace, the environment of its commands, and a few helpers."""

    name: str  # of the network namespace
    root: Path  # configuration, state, spool and logs
    env: dict[str, str]  # the caller's, with SLURM_CONF (which names munge's socket) and /usr/sbin; jobs inherit it
    daemons: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def netns(self) -> str:
        """The namespace's path, for ``nsenter --net=``."""
        return f"/run/netns/{self.name}"

    def _argv(self, argv) -> list[str]:
        return ["nsenter", f"--net={self.netns}", "--", *map(str, argv)]

    def run(self, argv, **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run inside the namespace, with :attr:`env` unless ``env`` is given."""
        kwargs.setdefault("env", self.env)
        return subprocess.run(self._argv(argv), **kwargs)

    def popen(self, argv, **kwargs) -> subprocess.Popen:
        """subprocess.Popen inside the namespace, with :attr:`env` unless ``env`` is given."""
        kwargs.setdefault("env", self.env)
        return subprocess.Popen(self._argv(argv), **kwargs)

    def jobs(self) -> dict[str, str]:
        """The jobs in the queue, job id to state (``PENDING``, ``RUNNING``, ``COMPLETING``...)."""
        out = self.run(["squeue", "--noheader", "--format=%i %T"], capture_output=True, text=True, check=True)
        return dict(line.split() for line in out.stdout.splitlines() if line.strip())

    def cancel(self, job_id: str) -> None:
        """Cancel a job (scancel)."""
        self.run(["scancel", str(job_id)], check=True, capture_output=True)

    def logs(self) -> str:
        """The last lines of each daemon's output (in the foreground slurmctld and slurmd log there too)."""
        return "\n".join(f"--- {name}\n{_tail(self.root / f'{name}.out')}" for name in DAEMONS)

    def _start(self, name: str, argv: list[str]) -> None:
        with open(self.root / f"{name}.out", "wb") as out:
            self.daemons[name] = self.popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _check_daemons(self) -> None:
        for name, process in self.daemons.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self.logs()}")

    def _wait_for(self, path: Path, name: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            self._check_daemons()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} made no {path} in {timeout:.0f} s\n{self.logs()}")
            time.sleep(0.05)

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            self._check_daemons()
            out = self.run(["sinfo", "--noheader", "--Node", "--format=%t"], capture_output=True, text=True)
            state = out.stdout.strip() or out.stderr.strip()
            if out.returncode == 0 and state == "idle":
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Slurm node is not idle after {timeout:.0f} s (sinfo: {state!r})\n{self.logs()}")

    def _processes(self) -> list[psutil.Process]:
        """The processes in the namespace or with this Slurm's SLURM_CONF (a job's that left it), and their children."""
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        pids, found = set(map(int, out.split())), {}
        for process in psutil.process_iter():
            try:
                if process.pid in pids or process.environ().get("SLURM_CONF") == self.env["SLURM_CONF"]:
                    found.update((one.pid, one) for one in [process, *process.children(recursive=True)])
            except psutil.Error:
                pass
        found.pop(os.getpid(), None)
        return list(found.values())

    def stop(self) -> None:
        """Cancel every job, stop the daemons, kill whatever the jobs left."""
        if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
            squeue = ["squeue", "--noheader", "--format=%i"]
            try:
                self.run(["scancel", "--full", "--user=root"], capture_output=True, timeout=30)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and self.run(squeue, capture_output=True, timeout=30).stdout:
                    time.sleep(0.2)
            except subprocess.SubprocessError:
                pass  # the daemons are stopped and the jobs killed below all the same
        for name in reversed(list(self.daemons)):  # slurmd, slurmctld, munged
            process = self.daemons[name]
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for _ in range(100):  # a killed process is gone at once, or a zombie that _processes does not list
            if not (left := self._processes()):
                return
            for process in left:
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"processes of Slurm {self.name} left: {[p.pid for p in left]}")


@contextmanager
def single_node_slurm(tmp_path: Path, cpus: int | None = None, memory_mb: int | None = None):
    """A running one-node Slurm (partition ``debug``) in a new network namespace, as a :class:`SlurmNode`.

    The node has this machine's short hostname, ``cpus`` CPUs (this machine's) and ``memory_mb`` MB of memory
    (90 % of this machine's); it is idle when this yields. On the way out every job is cancelled, the daemons
    and whatever the jobs left are killed, and the namespace is deleted.
    """
    if reason := skip_reason():
        raise RuntimeError(reason)
    root = Path(tmp_path) / "slurm"
    for folder in ("munge", "state", "spool"):
        (root / folder).mkdir(parents=True, mode=0o755)
    host = socket.gethostname().split(".")[0]
    if len(str(root / "spool" / f"{host}_1000000.4294967291")) > 107:  # a batch job's socket in slurmd's spool
        raise RuntimeError(f"{root} is too long a folder for the sockets of Slurm's jobs (108 bytes)")
    cpus = cpus or os.cpu_count()
    memory_mb = memory_mb or int(psutil.virtual_memory().total / 2**20 * 0.9)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, root=root, cpus=cpus, memory_mb=memory_mb))
    key = root / "munge" / "key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    env = {**os.environ, "SLURM_CONF": str(conf), "PATH": _PATH}
    node = SlurmNode(name=f"slurm-{os.getpid()}-{secrets.token_hex(4)}", root=root, env=env)
    with ExitStack() as stack:
        subprocess.run(["ip", "netns", "add", node.name], check=True, capture_output=True)
        stack.callback(subprocess.run, ["ip", "netns", "delete", node.name], capture_output=True)
        subprocess.run(["ip", "-n", node.name, "link", "set", "lo", "up"], check=True, capture_output=True)
        # Slurm 22.05 finds its listening address with getaddrinfo(NULL, AF_INET, AI_ADDRCONFIG), which glibc
        # refuses when 127.0.0.1 is the only IPv4 address: a second one on lo, still only loopback.
        subprocess.run(["ip", "-n", node.name, "address", "add", "127.0.0.2/8", "dev", "lo"], check=True,
                       capture_output=True)
        stack.callback(node.stop)
        node._start("munged", ["munged", "--foreground", "--force", f"--socket={root}/munge/socket",
                               f"--key-file={key}", f"--pid-file={root}/munged.pid", f"--seed-file={root}/munge/seed"])
        node._wait_for(root / "munge" / "socket", "munged")
        node._start("slurmctld", ["slurmctld", "-D", "-i", "-f", conf])
        node._start("slurmd", ["slurmd", "-D", "-N", host, "-f", conf])
        node._wait_idle(START_TIMEOUT)
        yield node
