"""A real one-node SLURM cluster on loopback for the tests, started from Debian's binaries.

munged, slurmctld and slurmd run in the foreground as children of the test process, with their
key, sockets, state, spool and logs in one temporary folder; nothing listens beyond 127.0.0.1.
slurmd forks a slurmstepd per job, which leaves slurmd's process group, so every process the
cluster starts carries a marker in its environment and `stop()` ends whatever still has it.
There is no accounting database (slurmdbd), so `sacct` answers nothing: a job that ends
without its result file (a cancelled one) stays "UNKNOWN" to submitit.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "slurmstepd")
CLIENTS = ("sbatch", "sinfo", "squeue", "scancel", "scontrol", "srun")
MARK = "HGSEARCH_TEST_SLURM"  # environment variable naming the cluster's folder


@dataclass(frozen=True)
class Cluster:
    base: Path  # the cluster's temporary folder (jobs may write below it)
    conf: Path
    partition: str
    node: str

    def env(self) -> dict[str, str]:
        """The environment for the clients (and through sbatch, for the jobs)."""
        return {**os.environ, "SLURM_CONF": str(self.conf), MARK: str(self.base)}

    def launcher_overrides(self) -> list[str]:
        """conf/hydra/launcher/slurm.yaml cut down to what the test node has (2 CPUs, no GPU)."""
        return [
            "hydra/launcher=slurm",
            f"hydra.launcher.partition={self.partition}",
            "hydra.launcher.gpus_per_node=0",
            "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10",
        ]

    def run(self, *cmd: str, timeout: float = 30) -> str:
        """A client command's stdout; RuntimeError with its stderr on failure."""
        out = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr.strip()}")
        return out.stdout

    def jobs(self) -> list[str]:
        """Ids of the jobs still known to squeue (array tasks as `<job>_<index>`)."""
        return self.run("squeue", "-h", "-r", "-o", "%i").split()


def available() -> bool:
    path = f"{os.environ.get('PATH', '')}:/usr/sbin"
    return all(shutil.which(b, path=path) for b in DAEMONS + CLIENTS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(base: Path, host: str, user: str, partition: str) -> str:
    return f"""\
ClusterName=hgsearch-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldAddr=127.0.0.1
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={base}/munge.socket
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MessageTimeout=10
SlurmdTimeout=300
InactiveLimit=0
KillWait=2
MinJobAge=300
NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} CPUs=2 RealMemory=2048 State=UNKNOWN
PartitionName={partition} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _marked(base: Path) -> list[int]:
    """Processes whose environment names this cluster's folder (never this process)."""
    needle = f"{MARK}={base}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return pids


def _end(procs: list[subprocess.Popen], base: Path) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    for _ in range(50):  # slurmstepd and job processes left slurmd's process group
        pids = _marked(base)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"processes of the test SLURM cluster survived SIGKILL: {_marked(base)}")


def start(timeout: float = 60):
    """munged, slurmctld and slurmd on loopback; waits until the node is idle: (cluster,
    stop()). stop() cancels the jobs, ends every process the cluster started and removes its
    folder."""
    base = Path(tempfile.mkdtemp(prefix="hgsearch-slurm-"))
    host = socket.gethostname().split(".")[0]
    user = getpass.getuser()
    cluster = Cluster(base, base / "slurm.conf", "hgsearch", host)
    for sub in ("state", "spool"):
        (base / sub).mkdir()
    key = base / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    cluster.conf.write_text(_config(base, host, user, cluster.partition))
    env = {**cluster.env(), "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin"}
    procs: list[subprocess.Popen] = []

    def daemon(*cmd: str) -> None:
        with open(base / f"{cmd[0]}.out", "w") as out:
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C meant for pytest is not theirs
                )
            )

    def stop() -> None:
        try:
            subprocess.run(["scancel", f"--user={user}"], env=env, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass
        try:
            _end(procs, base)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    try:
        daemon(
            "munged",
            "--foreground",
            "--force",
            f"--socket={base}/munge.socket",
            f"--key-file={key}",
            f"--pid-file={base}/munged.pid",
            f"--log-file={base}/munged.log",
            f"--seed-file={base}/munged.seed",
        )
        _wait(lambda: (base / "munge.socket").exists(), procs, base, "munged's socket", timeout)
        daemon("slurmctld", "-D", "-f", str(cluster.conf))
        daemon("slurmd", "-D", "-f", str(cluster.conf))

        def idle() -> bool:
            out = subprocess.run(
                ["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True
            )
            return out.returncode == 0 and out.stdout.split() == ["idle"]

        _wait(idle, procs, base, "the node to be idle", timeout)
    except BaseException:
        stop()
        raise
    return cluster, stop


def _wait(ready, procs: list[subprocess.Popen], base: Path, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        dead = [p.args[0] for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            logs = "".join(
                f"\n--- {p.name}\n" + p.read_text(errors="replace")[-1500:]
                for p in sorted(base.glob("*.log")) + sorted(base.glob("*.out"))
            )
            why = f"{', '.join(dead)} exited" if dead else f"no {what} after {timeout:g} s"
            raise RuntimeError(f"the test SLURM cluster did not start: {why}{logs}")
        time.sleep(0.2)
