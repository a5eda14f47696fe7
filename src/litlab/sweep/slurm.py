"""``hydra/launcher=slurm``: hydra-submitit-launcher's SLURM launcher, fitted to litlab.

On top of the plugin: GPUs are asked for only when the trainer uses them; while jobs wait, the
submitting ``litlab-train`` says which jobs, their state (and SLURM's reason when one pends) and
where their logs go; each job's run.json records the command the user typed (not submitit's
``_submit.py``); and no secret typed on the command line is written into the job files
submitit pickles: such values travel to the jobs as environment variables instead.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as _PluginLauncher,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from litlab import LitlabError, first_line
from litlab.sweep import interrupt
from litlab.sweep.grid import JOB_FILE, JobCancelled, job_names, job_outcome, record_job
from litlab.tracking import provenance, redaction

log = logging.getLogger(__name__)

SECRET_ENV = "LITLAB_SECRET_"
_GPU_ACCELERATORS = ("gpu", "cuda")
# Pending reasons that mean "never, as asked" rather than "later".
_STUCK = {
    "PartitionConfig": "the job asks for more than the partition allows",
    "ReqNodeNotAvail": "no node that could run it is available",
    "PartitionNodeLimit": "the job asks for more nodes than the partition has",
    "PartitionTimeLimit": "timeout_min is over the partition's time limit",
    "BadConstraints": "no node satisfies the request",
    "Resources": None,  # waits for busy nodes: normal
}
_POLL_S = 2.0
# The states of a job that has left the queue for good (a requeued one goes back to PENDING).
_ENDED = {
    "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY",
    "BOOT_FAIL", "DEADLINE",
}  # fmt: skip


def gpus_per_node(trainer: DictConfig) -> int | None:
    """GPUs to ask SLURM for: the trainer's devices if it trains on GPUs, else none."""
    accelerator = str(trainer.get("accelerator", "")).lower()
    devices = trainer.get("devices")
    if accelerator in _GPU_ACCELERATORS and isinstance(devices, int):
        return devices
    return None


def cpus_per_task(cfg: DictConfig, tasks_per_node: int, nodes: list[tuple[int, int]]) -> int:
    """CPUs per task (DDP rank) when ``hydra.launcher.cpus_per_task`` is not set: the rank's own
    process and its DataLoader workers (``data.num_workers``), capped so that every rank of a
    node fits on the partition's largest node (``nodes``: each node's CPUs and memory)."""
    workers = OmegaConf.select(cfg, "data.num_workers", default=0)
    wanted = 1 + (workers if isinstance(workers, int) and workers > 0 else 0)
    if nodes:
        wanted = min(wanted, max(cpus for cpus, _ in nodes) // max(tasks_per_node, 1))
    return max(wanted, 1)


def _nodes(partition: str | None) -> list[tuple[int, int]]:
    """The CPUs and memory (MB) of each node of ``partition`` (None: the default one), from
    sinfo; empty when sinfo cannot tell."""
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%P|%c|%m"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    nodes = []
    for line in out.splitlines():
        name, cpus, mem = (f.strip() for f in (line.split("|") + ["", ""])[:3])
        default = name.endswith("*")
        if (name.rstrip("*") == partition or (partition is None and default)) and (
            cpus.isdigit() and mem.isdigit()
        ):
            nodes.append((int(cpus), int(mem)))
    return nodes


def _asked(params: dict, nodes: list[tuple[int, int]]) -> str:
    """What each node was asked for (SLURM's --mem is per node), and what the largest node of
    the partition has."""
    tasks, cpus = params.get("tasks_per_node"), params.get("cpus_per_task")
    asked = (
        f"Asked, on each of {params.get('nodes')} node(s): {tasks} task(s) x {cpus} CPU(s) "
        f"(cpus_per_task), {params.get('mem_gb')} GB (mem_gb), "
        f"{params.get('gpus_per_node') or 0} GPU(s)"
    )
    if not nodes:
        return asked
    where = f"partition {params['partition']}" if params.get("partition") else "the partition"
    most_cpus, most_mem = max(c for c, _ in nodes), max(m for _, m in nodes)
    return f"{asked}; the largest node of {where} has {most_cpus} CPUs and {most_mem / 1024:g} GB"


def _secret_value(override: str) -> str | None:
    key, eq, _ = override.partition("=")
    if not eq or not redaction.is_secret(key.lstrip("+~").split(".")[-1]):
        return None
    value = OverridesParser.create().parse_override(override).value()
    return str(value) if isinstance(value, str | int | float) else None


def move_secrets_to_env(overrides: Sequence[str], env: dict[str, str]) -> list[str]:
    """``+db.password=x`` -> ``+db.password=${oc.env:LITLAB_SECRET_0}`` with ``env`` holding x;
    URL passwords likewise. SLURM passes the submitting environment on to the job."""
    out = []
    for item in overrides:
        value = _secret_value(item)
        if value:
            key = item.partition("=")[0]
            out.append(f"{key}=${{oc.env:{_env_name(value, env)}}}")
            continue
        out.append(
            redaction.URL_PASSWORD.sub(
                lambda m: f"{m.group(1)}${{oc.env:{_env_name(m.group(2), env)}}}", item
            )
        )
    return out


def _env_name(value: str, env: dict[str, str]) -> str:
    for name, known in env.items():
        if known == value:
            return name
    name = f"{SECRET_ENV}{len(env)}"
    env[name] = value
    return name


def _scrub(config: DictConfig) -> DictConfig:
    """A copy of the sweep config without secrets, resolver cache kept (the jobs' shared
    ``${now:...}`` sweep dir comes from it); jobs recompose their config from their overrides."""
    clean = copy.deepcopy(config)
    plain = OmegaConf.to_container(config, resolve=False)
    redacted = redaction.redact(plain)
    _apply(clean, plain, redacted)
    overrides = clean.hydra.overrides
    with read_write(overrides), open_dict(overrides):
        overrides.task = redaction.redact_overrides(list(config.hydra.overrides.task))
    return clean


def _scrub_singletons(state: dict, clean: DictConfig) -> dict:
    """Hydra's singletons travel with each job; its HydraConfig holds the overrides as typed."""
    from hydra.core.hydra_config import HydraConfig

    instances = dict(state["instances"])
    if HydraConfig in instances:
        hydra_config = copy.copy(instances[HydraConfig])
        hydra_config.cfg = OmegaConf.masked_copy(clean, "hydra")
        instances[HydraConfig] = hydra_config
    return {**state, "instances": instances}


def _apply(node: Any, before: Any, after: Any) -> None:
    if isinstance(before, dict):
        for key, value in before.items():
            if value == after[key]:
                continue
            if isinstance(value, dict):
                _apply(node[key], value, after[key])
            else:
                with read_write(node), open_dict(node):
                    node[key] = after[key]


class SlurmLauncher(_PluginLauncher):
    """Hydra's submitit SLURM launcher, made to keep secrets off the job files, ask for
    GPUs only for GPU trainers, and say what the queue is doing while it waits."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.command: list[str] = []

    def __call__(self, *args: Any, **kwargs: Any):
        provenance.set_command(self.command)  # on the node: run.json names the typed command
        with interrupt.cancel_on_sigterm():  # scancel: the run records itself, then ends
            return super().__call__(*args, **kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        assert self.config is not None
        if self.params.get("gpus_per_node") is None:
            self.params["gpus_per_node"] = gpus_per_node(self.config.trainer)
        nodes = _nodes(self.params.get("partition"))
        if self.params.get("cpus_per_task") is None:
            self.params["cpus_per_task"] = cpus_per_task(
                self.config, int(self.params["tasks_per_node"]), nodes
            )
        self.command = provenance.command_line()
        secrets: dict[str, str] = {}
        job_overrides = [move_secrets_to_env(o, secrets) for o in job_overrides]
        saved_env = {k: os.environ.get(k) for k in secrets}
        os.environ.update(secrets)  # sbatch exports the environment to the job
        self.config = _scrub(self.config)
        # Hydra's sweeper saved the sweep's config as typed before calling us.
        redaction.redact_yaml(Path(str(self.config.hydra.sweep.dir)) / "multirun.yaml")
        try:
            jobs = self._submit(job_overrides, initial_job_idx, nodes)
        finally:
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            last = watch(jobs, self.params)
        except KeyboardInterrupt:
            # Not an error (no user_errors): the jobs run on without this process.
            ids = " ".join(j.job_id for j in jobs)
            sys.exit(f"litlab-train: stopped waiting; the SLURM jobs go on (scancel {ids})")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        returns = []
        for idx, (job, overrides) in enumerate(zip(jobs, job_overrides, strict=True)):
            ended = _job_return(
                job, last.get(job.job_id, ""), redaction.redact_overrides(overrides)
            )
            if ended.status != JobStatus.COMPLETED:  # lost jobs first: they record nothing
                _record_lost(self.config, sweep_dir, initial_job_idx + idx, ended)
            returns.append(ended)
        _report_failures(jobs, returns, job_overrides, initial_job_idx, sweep_dir)
        return returns

    def _submit(self, job_overrides, initial_job_idx: int, nodes: list[tuple[int, int]]) -> list:
        """What the plugin's ``launch`` does up to submitting (it then blocks without a word)."""
        import submitit
        from hydra.core.singleton import Singleton
        from hydra.core.utils import filter_overrides
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                k if k in base else f"slurm_{k}": v
                for k, v in self.params.items()
                if k not in init_keys
            }
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info(f"SLURM sweep output dir : {sweep_dir}")
        state = _scrub_singletons(Singleton.get_state(), self.config)
        job_params = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", state))
        try:
            # submitit prints sbatch's errors, then raises them: said once, below.
            with contextlib.redirect_stderr(io.StringIO()):
                return executor.map_array(self, *zip(*job_params, strict=True))
        except submitit.core.utils.FailedJobError as err:  # sbatch refused them (at once)
            said = "; ".join(
                line.removeprefix("sbatch: error: ") for line in str(err).strip().splitlines()
            )
            sys.exit(
                f"litlab: error: SLURM refused the job(s): {said}. {_asked(self.params, nodes)}"
            )


class JobLost(LitlabError):
    """A job that left SLURM's queue without a result, and not because it was cancelled."""


def _job_return(job, last_state: str, overrides: list[str]):
    """The job's JobReturn; one that left the queue without a result (cancelled before it
    could record itself, killed, node lost) is a failed job with one line saying so, as a job
    that raised would be. (submitit would wait for it forever where SLURM keeps no accounting:
    it asks sacct.)"""
    for _ in range(15):  # a shared filesystem may show the result file a little late
        if job.paths.result_pickle.exists():
            return job.results()[0]
        time.sleep(_POLL_S / 2)
    if last_state == "CANCELLED":
        error: Exception = JobCancelled(
            "cancelled by SLURM (scancel) before it could record itself"
        )
    else:
        error = JobLost(
            f"left the queue without a result (last seen: {last_state or 'never'}; killed, out "
            f"of memory or time, or its node lost?); its log: {job.paths.stderr}"
        )
    # Built as Hydra's run_job builds a failed job's: ``.return_value`` raises ``error``
    # (pinned in tests/test_library_contracts.py), and grid.job_outcome reads it from there.
    lost = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    lost.return_value = error
    return lost


def _record_lost(config: DictConfig, sweep_dir: Path, num: int, ended) -> None:
    """A job that ended without recording itself (killed before it could, or cancelled while it
    waited) gets its row in the results table here, and its run.json, if it has one, its end."""
    from litlab.tracking import manifest

    run_dir = sweep_dir / str(num)  # hydra.sweep.subdir is the job's number (configs/hydra/)
    if (run_dir / JOB_FILE).exists():
        return
    _, err = job_outcome(ended)
    cancelled = isinstance(err, JobCancelled)
    if manifest.read(run_dir).get("status") == "running":
        manifest.mark(run_dir, "interrupted" if cancelled else "failed", first_line(err))
    hydra = {
        "job": {"num": num},
        "overrides": {"task": ended.overrides},
        "sweep": {"dir": sweep_dir},
    }
    job = OmegaConf.create({"hydra": hydra, "monitor": dict(config.monitor)})
    record_job(job, run_dir, "cancelled" if cancelled else "failed", None, first_line(err))


def _report_failures(jobs: list, returns: list, job_overrides, first: int, sweep_dir: Path) -> None:
    """Each job that did not complete, in one line (Hydra's sweeper would re-raise the first
    one's error with a traceback), then the results table; the command ends with status 1."""
    names = job_names([redaction.redact_overrides(list(o)) for o in job_overrides])
    lines = []
    for i, (job, ended, name) in enumerate(zip(jobs, returns, names, strict=True)):
        _, err = job_outcome(ended)
        if err is not None:
            which = f"job {first + i}: {name}" if name else f"job {first + i}"
            lines.append(f"litlab: SLURM job {job.job_id} ({which}): {first_line(err)}")
    if lines:
        sys.exit("\n".join([*lines, f"sweep results: {sweep_dir / 'results.md'}"]))


def watch(jobs: list, params: dict) -> dict[str, str]:
    """Print the jobs, their logs, and each change of state until all have left the queue;
    returns the last state seen of each (CANCELLED, TIMEOUT, ... once it has ended)."""
    if not jobs:
        return {}
    ids = [j.job_id for j in jobs]
    print(
        f"litlab: submitted {len(ids)} SLURM job(s) {', '.join(ids)} "
        f"(cpus_per_task={params.get('cpus_per_task')}, mem_gb={params.get('mem_gb')}, "
        f"gpus_per_node={params.get('gpus_per_node')}); logs: {jobs[0].paths.stdout} "
        "and likewise for the others",
        flush=True,
    )
    seen: dict[str, str] = {}
    last: dict[str, str] = {}
    pending = set(ids)
    while pending:
        states = _queue([j.job_id.split("_")[0] for j in jobs])
        for job in jobs:
            if job.job_id not in pending:
                continue
            state, reason = states.get(job.job_id, ("", ""))
            if state:
                last[job.job_id] = state
            if job.paths.result_pickle.exists() or state in _ENDED or not state:
                pending.discard(job.job_id)  # the end is told once, by launch
                continue
            line = f"{state} ({reason})" if reason and reason != "None" else state
            if seen.get(job.job_id) != line:
                seen[job.job_id] = line
                hint = _STUCK.get(reason.split(",")[0]) if state == "PENDING" else None
                extra = (
                    f": {hint}; lower hydra.launcher.cpus_per_task / mem_gb / timeout_min "
                    "or pick another hydra.launcher.partition (scancel it to stop waiting)"
                    if hint
                    else ""
                )
                print(f"litlab: SLURM job {job.job_id}: {line}{extra}", flush=True)
        if pending:
            time.sleep(_POLL_S)
    return last


def _queue(array_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` for the jobs SLURM still knows: in its queue, or ended
    less than ``MinJobAge`` (300 s by default) ago."""
    ids = ",".join(sorted(set(array_ids)))
    cmd = ["squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r", "-j", ids]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"litlab: squeue failed ({err}); waiting for results anyway", file=sys.stderr)
        return {}
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        states[job_id.strip()] = (state.strip(), reason.strip())
    return states
