"""``hydra/launcher=slurm``: hydra-submitit-launcher's SLURM launcher, fitted to litlab.

On top of the plugin: GPUs are asked for only when the trainer uses them; while jobs wait, the
submitting ``litlab-train`` says which jobs, their state (and SLURM's reason when one pends) and
where their logs go; each job's run.json records the command the user typed (not submitit's
``_submit.py``); and no secret typed on the command line is written into the job files
submitit pickles: such values travel to the jobs as environment variables instead.
"""

from __future__ import annotations

import copy
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as _PluginLauncher,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from litlab import LitlabError
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


def gpus_per_node(trainer: DictConfig) -> int | None:
    """GPUs to ask SLURM for: the trainer's devices if it trains on GPUs, else none."""
    accelerator = str(trainer.get("accelerator", "")).lower()
    devices = trainer.get("devices")
    if accelerator in _GPU_ACCELERATORS and isinstance(devices, int):
        return devices
    return None


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
        return super().__call__(*args, **kwargs)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int):
        assert self.config is not None
        if self.params.get("gpus_per_node") is None:
            self.params["gpus_per_node"] = gpus_per_node(self.config.trainer)
        self.command = provenance.command_line()
        secrets: dict[str, str] = {}
        job_overrides = [move_secrets_to_env(o, secrets) for o in job_overrides]
        saved_env = {k: os.environ.get(k) for k in secrets}
        os.environ.update(secrets)  # sbatch exports the environment to the job
        self.config = _scrub(self.config)
        # Hydra's sweeper saved the sweep's config as typed before calling us.
        redaction.redact_yaml(Path(str(self.config.hydra.sweep.dir)) / "multirun.yaml")
        try:
            jobs = self._submit(job_overrides, initial_job_idx)
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
        return [
            _job_return(j, last.get(j.job_id, ""), redaction.redact_overrides(list(o)))
            for j, o in zip(jobs, job_overrides, strict=True)
        ]

    def _submit(self, job_overrides, initial_job_idx: int) -> list:
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
        return executor.map_array(self, *zip(*job_params, strict=True))


class JobLost(CompactHydraException, LitlabError):
    """Hydra prints a CompactHydraException as its one line, without a traceback."""


def _job_return(job, last_state: str, overrides: list[str]):
    """The job's JobReturn; one that left the queue without a result (cancelled, killed, node
    lost) is a failed job with one line saying so, as a job that raised would be. (submitit
    would wait for it forever where SLURM keeps no accounting: it asks sacct.)"""
    from hydra.core.utils import JobReturn, JobStatus

    for _ in range(15):  # a shared filesystem may show the result file a little late
        if job.paths.result_pickle.exists():
            return job.results()[0]
        time.sleep(_POLL_S / 2)
    error = JobLost(
        f"SLURM job {job.job_id} left the queue without a result (last seen: "
        f"{last_state or 'never'}; cancelled, killed or its node lost?); "
        f"its log: {job.paths.stderr}"
    )
    # Built as Hydra's run_job builds a failed job's: the sweeper then raises ``error`` from
    # ``.return_value`` (pinned in tests/test_library_contracts.py).
    lost = JobReturn(overrides=overrides, status=JobStatus.FAILED)
    lost.return_value = error
    return lost


def watch(jobs: list, params: dict) -> dict[str, str]:
    """Print the jobs, their logs, and each change of state until all have left the queue;
    returns the last state seen of each."""
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
    pending = set(ids)
    while pending:
        states = _queue([j.job_id.split("_")[0] for j in jobs])
        for job in jobs:
            if job.job_id not in pending:
                continue
            if job.paths.result_pickle.exists() or job.job_id not in states:
                pending.discard(job.job_id)
                continue
            state, reason = states[job.job_id]
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
    return seen


def _queue(array_ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` for the jobs still in SLURM's queue."""
    cmd = ["squeue", "-h", "-r", "-o", "%i|%T|%r", "-j", ",".join(sorted(set(array_ids)))]
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
