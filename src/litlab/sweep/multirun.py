"""One job of a grid (``litlab-train -m``): ``grid_job``, and DDP inside it.

A grid job that would start DDP ranks itself runs as a litlab-train process of its own
(``run_job_apart``): when one of its ranks fails, Lightning kills that job's processes, and with
them it would kill the sweep's process too; apart, the job fails alone and the grid goes on.

Lightning starts ranks 1..N-1 by rerunning ``sys.argv`` with ``hydra.run.dir=<hydra.run.dir>``
appended (``_hydra_subprocess_cmd``). Under ``-m`` that argv is the sweep itself, so every child
would start the full grid again, and ``hydra.run.dir`` (a fresh timestamp) is not the job's dir.
While a grid job runs, ``job_argv`` makes both name this job alone: its own overrides, in its
own output dir. With the SLURM launcher and tasks per node = devices, SLURM starts the ranks and
Lightning launches nothing; this is then a no-op.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, read_write

from litlab import Interrupted, LitlabError, first_line
from litlab.sweep import interrupt
from litlab.sweep.grid import JobCancelled
from litlab.tracking.provenance import shell_command

# What Lightning's launcher sets in the launching process (``_call_children_scripts``).
_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Flags that choose the config (not overrides): a child rank needs them as given.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def _config_flags(argv: list[str]) -> list[str]:
    kept, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in _CONFIG_FLAGS and i + 1 < len(argv):
            kept += argv[i : i + 2]
            i += 1
        elif arg.startswith(tuple(f"{f}=" for f in _CONFIG_FLAGS)):
            kept.append(arg)
        i += 1
    return kept


def single_run_argv(argv: list[str], overrides: list[str], output_dir: str) -> list[str]:
    """The command line that runs one job of a sweep alone, writing into ``output_dir``."""
    return [argv[0], *_config_flags(argv[1:]), *overrides, f"hydra.run.dir={output_dir!r}"]


def grid_job(cfg: DictConfig) -> float | None:
    """Fit and test one job of a grid; its objective. Hydra records a job that raises as
    failed and goes on with the rest of the grid."""
    from litlab.run.fit import fit_and_test

    if needs_own_process(cfg):  # a DDP job: its failure must not end the grid
        return run_job_apart(cfg)
    with job_argv(), _own_gpu(cfg):  # DDP children of a grid job rerun that job only
        try:
            return fit_and_test(cfg).objective
        except BaseException as err:
            if not interrupt.cancelled():
                raise
            raise _cancelled() from err


@contextmanager
def _own_gpu(cfg: DictConfig) -> Iterator[None]:
    """Under the parallel launcher on a machine with several GPUs, a one-GPU job trains on a GPU
    no other job of the grid holds: ``trainer.devices=[i]``, recorded in its config."""
    from litlab.sweep import devices

    parallel = "Joblib" in str(HydraConfig.get().launcher.get("_target_", ""))
    trainer = cfg.trainer
    one_gpu = trainer.get("accelerator") in ("gpu", "cuda", "auto") and trainer.devices in (1, "1")
    gpus = devices.visible_gpus() if parallel and one_gpu else []
    if len(gpus) < 2:
        yield
        return
    with devices.claim_gpu(Path(HydraConfig.get().sweep.dir) / ".gpus", len(gpus)) as index:
        with read_write(cfg):
            trainer.devices = [index]
        yield


def _cancelled() -> JobCancelled:
    """A job SLURM stopped (only the SLURM launcher's jobs listen for it: ``cancel_on_sigterm``).
    Whatever error the stop caused (wandb's service, killed with the job, gone mid-call) is not
    the job's: its run.json says interrupted, and Hydra records the job as failed with this
    error, which the results table shows as ``cancelled``."""
    from lightning.pytorch.utilities import rank_zero_only

    from litlab.tracking import manifest

    run_dir = HydraConfig.get().runtime.output_dir
    said = "cancelled by SLURM (scancel, or its time limit)"
    if rank_zero_only.rank != 0:  # rank 0 records the run and says where it is
        return JobCancelled(said)
    if not (Path(run_dir) / manifest.FILENAME).is_file():
        return JobCancelled(f"{said} before its run started")
    manifest.mark(run_dir, "interrupted", said)
    if not any(Path(run_dir).glob("checkpoints/*.ckpt")):
        return JobCancelled(f"{said} before its first checkpoint; {run_dir} records it")
    resume = shell_command(["litlab-train", f"ckpt_path={run_dir}"])
    return JobCancelled(f"{said}; {run_dir} records it as interrupted; continue it with: {resume}")


@contextmanager
def job_argv() -> Iterator[None]:
    """Within a grid job, make Lightning's DDP children rerun this job in its own dir."""
    if "LOCAL_RANK" in os.environ:  # ranks were started for this process: Lightning starts none
        yield
        return
    hydra = HydraConfig.get()
    output_dir = hydra.runtime.output_dir
    saved_argv, saved_dir = sys.argv, hydra.run.dir
    saved_env = {k: os.environ.get(k) for k in _DDP_ENV}
    sys.argv = single_run_argv(sys.argv, list(hydra.overrides.task), output_dir)
    with read_write(hydra.run):
        hydra.run.dir = output_dir  # Lightning appends hydra.run.dir=<this>; last one wins
    try:
        yield
    finally:
        sys.argv = saved_argv
        with read_write(hydra.run):
            hydra.run.dir = saved_dir
        _end_ddp(saved_env)


def _end_ddp(saved_env: dict[str, str | None]) -> None:
    """Leave the process as the job found it, so the sweep's next job can start its own ranks.

    Lightning sets LOCAL_RANK and friends in this process when it starts children, and reads
    LOCAL_RANK as "ranks were started for me"; its process group outlives the fit. Left as they
    are, the next job would join the finished job's (dead) ranks.
    """
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def needs_own_process(cfg: DictConfig) -> bool:
    """A grid job whose Trainer would launch DDP ranks from this process.

    Not when SLURM started the ranks (tasks per node = devices): Lightning launches nothing then.
    """
    if "LOCAL_RANK" in os.environ or int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return False
    trainer = cfg.get("trainer") or {}
    devices = trainer.get("devices")
    per_node = devices if isinstance(devices, int) and devices > 0 else 1
    return (
        "ddp" in str(trainer.get("strategy")) or per_node * int(trainer.get("num_nodes") or 1) > 1
    )


def run_job_apart(cfg: DictConfig) -> float | None:
    """This job as ``python -m litlab.cli.train <its overrides>`` in its own dir; its objective."""
    from litlab.tracking import manifest

    hydra = HydraConfig.get()
    run_dir = hydra.runtime.output_dir
    argv = single_run_argv(sys.argv, list(hydra.overrides.task), run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "litlab.cli.train", *argv[1:]])
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # Ctrl+C reached the job's processes too: let them record it
        proc.wait()
        raise Interrupted(run_dir) from None
    if code == 130:
        raise Interrupted(run_dir)
    record = manifest.read(run_dir)
    if code != 0:
        error = record.get("error") or f"its process ended with status {code}; see its output"
        if record.get("status") == "running":  # killed (by Lightning, after a rank failed)
            error = f"its processes were stopped after a rank failed (status {code})"
            manifest.mark(run_dir, "failed", error)
        raise LitlabError(f"job {hydra.job.num} failed: {first_line(error)}")
    return record.get("metrics", {}).get(cfg.monitor.metric)
