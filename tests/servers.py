"""Throwaway servers for integration tests: a PostgreSQL cluster and a single-node SLURM cluster,
each in a temporary directory, listening on 127.0.0.1 only, stopped when the test ends.

Tests skip (with the reason) where the binaries are missing; under CI (``CI`` set) a skip is a
failure, since .ci/run installs them (Debian: postgresql, slurm-wlm, munge).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_PASSWORD = "Pg-canary-7f3a9c"  # grepped for in every file a test writes


def need(*tools: str, hint: str) -> dict[str, str]:
    """The full paths of ``tools``; skip the test (fail it under CI) when one is missing."""
    found = {t: _which(t) for t in tools}
    missing = [t for t, path in found.items() if not path]
    if missing:
        _skip_or_fail(f"{', '.join(missing)} not installed ({hint})")
    return found  # type: ignore[return-value]


def _which(tool: str) -> str | None:
    extra = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True) + ["/usr/sbin", "/sbin"]
    return shutil.which(tool) or shutil.which(tool, path=os.pathsep.join(extra))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user(name: str):
    """PostgreSQL refuses to run as root: drop to its own user when we are root."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam(name)

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop


def _server_dir(owner: str | None) -> Path:
    # Not under pytest's tmp_path: that is private to root, and the server runs as its own user.
    path = Path(tempfile.mkdtemp(prefix="litlab-server-"))
    if owner and os.geteuid() == 0:
        user = pwd.getpwnam(owner)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    pg_ctl: Callable[..., None] = field(repr=False, default=lambda *args: None)

    def stop(self) -> None:
        """Stop the server as an administrator would: its sessions ended, connections refused."""
        self.pg_ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        """Start it again after ``stop``, on the same port with the same data."""
        self.pg_ctl("-w", "start")

    def url(self, database: str, driver: str = "") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres() -> Iterator[Postgres]:
    tools = need("initdb", "pg_ctl", hint="apt-get install postgresql")
    owner = "postgres" if os.geteuid() == 0 else None
    root = _server_dir(owner)
    data, port = root / "data", free_port()
    (root / "pw").write_text(PG_PASSWORD)
    if owner:
        user = pwd.getpwnam(owner)
        os.chown(root / "pw", user.pw_uid, user.pw_gid)
    run = {"preexec_fn": _as_user(owner) if owner else None, "capture_output": True, "text": True}
    subprocess.run(
        [tools["initdb"], "-D", str(data), "-U", "litlab", f"--pwfile={root / 'pw'}",
         "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
        check=True, **run,
    )  # fmt: skip
    options = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c fsync=off"

    def pg_ctl(*args: str) -> None:
        if args[-1] == "start":
            args = ("-o", options, "-l", str(root / "log"), *args)
        done = subprocess.run([tools["pg_ctl"], "-D", str(data), *args], **run)
        if done.returncode:
            raise RuntimeError(f"pg_ctl {args[-1]} failed: {done.stderr}\n{_tail(root / 'log')}")

    pg_ctl("-w", "start")
    try:
        yield Postgres("127.0.0.1", port, "litlab", PG_PASSWORD, pg_ctl)
    finally:
        subprocess.run([tools["pg_ctl"], "-D", str(data), "-m", "immediate", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def wait_for(check, what: str, tries: int = 600, every: float = 0.1):
    """Poll ``check`` until it returns something truthy (a poll count, not a speed limit)."""
    for _ in range(tries):
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class Slurm:
    conf: Path
    root: Path  # partitions: debug (the default, no time limit) and short (1 minute)

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def log(self, name: str) -> str:
        return _tail(self.root / name, 40)


_SLURM_CONF = """\
ClusterName=litlab
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
# No cgroups in a container: plain process tracking, no task affinity, no accounting.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
SlurmdParameters=config_overrides
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
# Too short for any job a test submits: the jobs there pend (PartitionTimeLimit).
PartitionName=short Nodes={node} MaxTime=1 State=UP
"""


@contextmanager
def slurm(cpus: int = 4, mem_mb: int = 8192) -> Iterator[Slurm]:
    """munged, slurmctld and one slurmd, all from a generated slurm.conf in a temp dir."""
    tools = need(
        "munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol",
        hint="apt-get install slurm-wlm munge",
    )  # fmt: skip
    if os.geteuid() != 0:
        _skip_or_fail("a throwaway SLURM cluster needs root (slurmd runs jobs as their user)")
    root = _server_dir(None)
    for d in ("state", "spool"):
        (root / d).mkdir()
    conf = root / "slurm.conf"
    # The node is named after this host: jobs reach their DDP rank 0 (MASTER_ADDR) by that name.
    host = socket.gethostname()
    conf.write_text(
        _SLURM_CONF.format(
            host=host, node=host, root=root, user="root",
            ctld_port=free_port(), d_port=free_port(), cpus=cpus, mem_mb=mem_mb,
        )
    )  # fmt: skip
    env = {**os.environ, "SLURM_CONF": str(conf)}
    procs: list[subprocess.Popen] = []
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "env": env}
    try:
        subprocess.run(
            [tools["mungekey"], "--create", f"--keyfile={root / 'munge.key'}"], check=True, env=env
        )
        procs.append(
            subprocess.Popen(
                [tools["munged"], "-F", "--force", f"--key-file={root / 'munge.key'}",
                 f"--socket={root / 'munge.socket'}", f"--pid-file={root / 'munged.pid'}",
                 f"--log-file={root / 'munged.log'}", f"--seed-file={root / 'munged.seed'}"],
                **quiet,
            )
        )  # fmt: skip
        wait_for(lambda: (root / "munge.socket").exists(), "munged's socket", tries=100)
        procs.append(subprocess.Popen([tools["slurmctld"], "-D", "-i", "-f", str(conf)], **quiet))
        procs.append(
            subprocess.Popen([tools["slurmd"], "-D", "-N", host, "-f", str(conf)], **quiet)
        )
        cluster = Slurm(conf, root)

        def node_up() -> bool:
            out = subprocess.run(
                [tools["scontrol"], "show", "node", host],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    "a SLURM daemon exited:\n"
                    + cluster.log("slurmctld.log")
                    + "\n"
                    + cluster.log("slurmd.log")
                )
            return "State=IDLE" in out.stdout

        wait_for(node_up, "the SLURM node to come up", tries=300)
        yield cluster
    finally:
        if len(procs) == 3:  # a job left running would outlive slurmd: cancel, wait for none
            subprocess.run([_which("scancel") or "scancel", "--partition=debug"], env=env)
            try:
                wait_for(lambda: not _queue(env), "SLURM's queue to empty", tries=300)
            except AssertionError:
                pass
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(root, ignore_errors=True)


def _queue(env: dict[str, str]) -> str:
    out = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env)
    return out.stdout.strip() if out.returncode == 0 else ""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)
