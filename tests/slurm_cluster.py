"""A throw-away single-node SLURM cluster for the tests marked ``slurm``.

Debian's ``slurm-wlm`` and ``munge`` (``make slurm`` installs them with apt, as root) run
one controller and one compute node on loopback, all of their configuration, keys, state,
spool and logs in one temporary folder:

- ``munged`` with its own key and socket; ``slurm.conf`` names that socket (``AuthInfo``);
- ``slurmctld`` and ``slurmd`` as root (``ProctrackType=proctrack/linuxproc``,
  ``TaskPlugin=task/none``), on free ports; ``SlurmdParameters=config_overrides`` lets the
  node declare more CPUs, memory and a GPU than the machine has, so the profile's real
  resource requests (8 CPUs, 64 GB, ``--gpus=1``) are accepted and scheduled; the GPU is a
  count-only device (``File=/dev/null``), nothing uses it;
- no accounting database: ``squeue`` answers the executor plugin's status queries (jobs
  stay listed for ``MinJobAge`` = 1 h), ``scontrol show job`` keeps each job's requested
  resources, and ``jobcomp/filetxt`` writes SLURM's own record of every finished job.

Client commands find the configuration where they do on a real site, at
``/etc/slurm/slurm.conf``: the Snakemake plugin's job step removes every ``SLURM_*``
variable, ``SLURM_CONF`` included, before its nested ``srun`` (the plugin's issue #164), so
a cluster configured only through ``SLURM_CONF`` cannot run its jobs. The cluster links
``/etc/slurm/slurm.conf`` (and ``gres.conf``) to its folder while it runs, refuses to start
when a real configuration is there, and removes the links when it stops. The daemons are
stopped by the process ids in their own pid files, and :meth:`SlurmCluster.stop` checks
that none is left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ETC = Path("/etc/slurm")
DAEMONS = ("slurmd", "slurmctld", "munged")
PREFIX = "epamnet-slurm-"
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "srun")


class ClusterUnavailable(RuntimeError):
    """The cluster cannot start here; the message says why and what to do."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _reclaim(link: Path) -> None:
    """Stop the daemons of a killed test run's cluster (by its pid files) and remove its link and folder."""
    root = Path(os.readlink(link)).parent.parent
    for name in DAEMONS:
        pidfile = root / "run" / f"{name}.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            if _alive(pid) and Path(f"/proc/{pid}/comm").read_text().strip() == name:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass
    link.unlink()
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class SlurmCluster:
    """One controller and one node; :meth:`start` brings it up, :meth:`stop` tears it down."""

    cpus: int = 8
    mem_mb: int = 128000
    gpus: int = 1
    root: Path = field(init=False)
    node: str = field(init=False)
    pids: dict[str, int] = field(init=False, default_factory=dict)
    _links: list[Path] = field(init=False, default_factory=list)

    # -- set-up -----------------------------------------------------------------
    def start(self) -> SlurmCluster:
        if os.geteuid() != 0:
            raise ClusterUnavailable("the SLURM test cluster runs slurmd as root; run the tests as root (as CI does)")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise ClusterUnavailable(f"{', '.join(missing)} not found: run `make slurm` (apt-get install slurm-wlm munge)")
        for name in ("slurm.conf", "gres.conf"):
            path = ETC / name
            if path.is_symlink() and os.readlink(path).startswith(f"{tempfile.gettempdir()}/{PREFIX}"):
                _reclaim(path)  # left by a test run that was killed before its tear-down
            elif path.exists() or path.is_symlink():
                raise ClusterUnavailable(f"{path} exists: this machine has a SLURM configuration; "
                                         "run the slurm tests on a machine without one (CI's fresh machine)")
        # munged wants every folder above its socket searchable by all: not pytest's 0700 tmp.
        self.root = Path(tempfile.mkdtemp(prefix=PREFIX, dir=tempfile.gettempdir()))
        self.root.chmod(0o755)
        self.node = socket.gethostname().split(".")[0]
        try:
            self._write_config()
            self._start_daemons()
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self) -> None:
        r = self.root
        for sub in ("etc", "run", "state", "spool", "log", "munge"):
            (r / sub).mkdir()
        (r / "munge").chmod(0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        ctld, slurmd = _free_port(), _free_port()
        conf = f"""\
ClusterName=epamnet-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
AuthType=auth/munge
AuthInfo=socket={r}/run/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=5
JobCompType=jobcomp/filetxt
JobCompLoc={r}/log/jobcomp.txt
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} Gres=gpu:{self.gpus} State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
"""
        (r / "etc" / "slurm.conf").write_text(conf)
        (r / "etc" / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null Count={self.gpus}\n")
        ETC.mkdir(parents=True, exist_ok=True)
        for name in ("slurm.conf", "gres.conf"):
            (ETC / name).symlink_to(r / "etc" / name)
            self._links.append(ETC / name)

    def _daemon(self, name: str, cmd: list[str], pidfile: Path) -> None:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise ClusterUnavailable(f"{name} did not start: {(result.stderr or result.stdout).strip()[-500:]}")
        deadline = time.monotonic() + 15
        while not (pidfile.is_file() and pidfile.read_text().strip()):
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"{name} wrote no pid file {pidfile}; see {self.root / 'log'}")
            time.sleep(0.1)
        self.pids[name] = int(pidfile.read_text().split()[0])

    def _start_daemons(self) -> None:
        r = self.root
        self._daemon("munged", [
            "munged", f"--key-file={r}/munge/munge.key", f"--socket={r}/run/munge.socket",
            f"--pid-file={r}/run/munged.pid", f"--log-file={r}/log/munged.log", f"--seed-file={r}/munge/seed",
        ], r / "run" / "munged.pid")
        conf = str(r / "etc" / "slurm.conf")
        self._daemon("slurmctld", ["slurmctld", "-f", conf], r / "run" / "slurmctld.pid")
        self._daemon("slurmd", ["slurmd", "-f", conf], r / "run" / "slurmd.pid")

    def _wait_until_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-n", self.node, "-o", "%T"], capture_output=True, text=True, env=self.env())
            state = out.stdout.strip().splitlines()[0] if out.stdout.strip() else out.stderr.strip()
            if state == "idle":
                return
            time.sleep(0.5)
        raise ClusterUnavailable(f"node {self.node} is {state!r}, not idle, after {timeout:.0f} s; see {self.root / 'log'}")

    # -- use ----------------------------------------------------------------------
    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for SLURM commands and jobs: no ``SLURM_*`` of an enclosing job."""
        env = dict(os.environ if base is None else base)
        return {k: v for k, v in env.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(list(cmd), capture_output=True, text=True, env=self.env(), timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: {result.stderr.strip()}")
        return result

    def job(self, job_id: str | int) -> dict[str, str]:
        """``scontrol show job``: what SLURM recorded for a job (its requested resources, state)."""
        out = self.run("scontrol", "show", "job", "-o", str(job_id)).stdout
        return dict(item.split("=", 1) for item in out.split() if "=" in item)

    def completed_jobs(self) -> dict[str, dict[str, str]]:
        """SLURM's job-completion records (``jobcomp/filetxt``), by job id."""
        path = self.root / "log" / "jobcomp.txt"
        records = {}
        for line in path.read_text().splitlines() if path.is_file() else []:
            rec = dict(item.split("=", 1) for item in line.split() if "=" in item)
            records[rec["JobId"]] = rec
        return records

    def wait_for_jobs(self, timeout: float = 120) -> None:
        """Until no job is pending or running."""
        deadline = time.monotonic() + timeout
        while self.run("squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i").stdout.strip():
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs still queued after {timeout:.0f} s")
            time.sleep(0.5)

    # -- tear-down ----------------------------------------------------------------
    def stop(self) -> None:
        """Cancel every job, stop the daemons by their pids, remove the links and the folder."""
        if "slurmctld" in self.pids and _alive(self.pids["slurmctld"]):
            subprocess.run(["scancel", "--user", "root"], capture_output=True, env=self.env(), timeout=30)
            try:
                self.wait_for_jobs(timeout=30)
            except AssertionError:
                pass  # the daemons' stop below ends what is left
        for name in DAEMONS:
            pid = self.pids.get(name)
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in self.pids.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.pids.values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        for link in self._links:
            if link.is_symlink():
                link.unlink()
        self._links.clear()
        left = [f"{n} ({p})" for n, p in self.pids.items() if _alive(p)]
        # A job step outlives slurmd only if it was stuck; this cluster is the only one here.
        steps = subprocess.run(["pgrep", "-x", "slurmstepd"], capture_output=True, text=True).stdout.split()
        for pid in steps:
            os.kill(int(pid), signal.SIGKILL)
        if left:
            raise AssertionError(f"SLURM daemons still running after stop: {', '.join(left)}")
        if hasattr(self, "root"):
            shutil.rmtree(self.root, ignore_errors=True)
