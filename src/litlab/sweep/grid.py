"""Grids (``litlab-train -m key=a,b ...``): the Hydra callback that gives a grid the same results
table as an Optuna search (``results``). litlab-train registers it for ``-m`` alone
(configs/hydra/callbacks/grid.yaml); a single run loads no sweep code.

Each job records itself next to its run (``sweep_job.json``) when it ends and refreshes the
table from every job recorded so far: with the SLURM launcher jobs end on other machines, and a
grid whose job fails never reaches ``on_multirun_end``, so the table must not wait for the end.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from litlab import LitlabError, first_line
from litlab.files import write_text
from litlab.sweep.results import TrialRow, finite, write_results
from litlab.tracking.provenance import shell_command
from litlab.tracking.redaction import redact_overrides

JOB_FILE = "sweep_job.json"
GRID = "hydra/callbacks=grid"  # litlab.cli.train adds it to the command line of a grid


def search_refused(argv: list[str]) -> str:
    """``litlab-train [-m] hparams_search=...`` is how other templates start Optuna; here the
    search is litlab-sweep's, and litlab-train says so instead of running plain jobs."""
    rest = [a for a in argv[1:] if a not in ("-m", "--multirun")]
    return (
        "hparams_search is a search space for litlab-sweep, which runs the Optuna search; "
        f"litlab-train would ignore it. Run: {shell_command(['litlab-sweep', *rest])}"
    )


def run_metrics(run_dir: Path) -> dict[str, float]:
    """A finished run's final metrics, read back from its directory.

    The run manifest (run.json) when it has them, else the last value of each column of the
    CSV logger's metrics.csv; a run with neither shows only its objective.
    """
    from litlab.tracking import manifest  # imports Lightning: not when litlab-train starts

    found = manifest.read(run_dir).get("metrics")
    if isinstance(found, dict):
        return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}
    last: dict[str, float] = {}
    for path in run_dir.glob("csv*/metrics.csv"):
        with open(path) as f:
            for row in csv.DictReader(f):
                last.update({k: float(v) for k, v in row.items() if k and v not in ("", None)})
    last.pop("epoch", None), last.pop("step", None)
    return last


def grid_rows(sweep_dir: Path) -> tuple[list[TrialRow], str, str]:
    """The jobs recorded so far under ``sweep_dir``, in job order, with the sweep's metric and
    mode (min or max)."""
    rows, metric, mode = [], "", "min"
    for path in sorted(sweep_dir.rglob(JOB_FILE)):
        job = json.loads(path.read_text())
        metric, mode = job["metric"], job["mode"]
        rows.append(TrialRow(**{k: job[k] for k in TrialRow.__dataclass_fields__}))
    rows.sort(key=lambda r: int(r.name) if r.name.isdigit() else r.name)
    return rows, metric, mode


class JobCancelled(LitlabError):
    """A job its scheduler stopped (SLURM: ``scancel``, or its time limit): ``cancelled`` in the
    results table, ``interrupted`` in its run.json."""


def job_outcome(job_return: JobReturn) -> tuple[Any, Exception | None]:
    """``(value, None)`` for a job that returned, ``(None, error)`` for one that raised.

    ``JobReturn.return_value`` re-raises a failed job's exception (pinned in
    tests/test_library_contracts.py), after writing "Error executing job with overrides" to
    stderr; Hydra's sweeper writes that line itself once the batch is done, so here it is kept
    out of the output.
    """
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return job_return.return_value, None
    except Exception as err:
        return None, err


def record_job(
    config: DictConfig, run_dir: Path, status: str, objective: float | None, error: str
) -> Path:
    """Write job ``hydra.job.num``'s record next to its run and refresh the sweep's table (the
    table's path). Atomic: the other jobs of a SLURM grid read it to refresh the table."""
    job = {
        "name": str(config.hydra.job.num),
        "overrides": redact_overrides(list(config.hydra.overrides.task)),
        "status": status,
        "objective": objective,
        "metrics": run_metrics(run_dir) if run_dir.is_dir() else {},
        "run_dir": str(run_dir),
        "error": error,
        "metric": config.monitor.metric,
        "mode": config.monitor.mode,
    }
    write_text(run_dir / JOB_FILE, json.dumps(job, indent=1))
    return refresh(Path(config.hydra.sweep.dir))


def refresh(sweep_dir: Path) -> Path:
    """results.md and results.csv from every job recorded so far; the path of results.md."""
    rows, metric, mode = grid_rows(sweep_dir)
    return write_results(rows, sweep_dir, metric, mode)


def grid_jobs(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, in job order, as Hydra's basic sweeper will list them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    overrides = parser.parse_overrides([*params, *config.hydra.overrides.task])
    (jobs,) = BasicSweeper.split_arguments(overrides, None)
    return jobs


def check_jobs(config: DictConfig) -> None:
    """Compose every job's config as the sweeper will and run a run's checks on it, before the
    first job starts: a bad value in the middle of a grid is refused with the job it is in, not
    found after the jobs before it have run (and then re-raised by Hydra with a traceback)."""
    from litlab.config import check_config

    if not str(config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper"):
        return  # another sweeper lists its jobs its own way; each job still checks itself
    jobs = grid_jobs(config)
    for num, (overrides, name) in enumerate(zip(jobs, job_names(jobs), strict=True)):
        try:
            check_config(_job_config(config, overrides, num))
        except (LitlabError, HydraException) as err:  # a bad value; a config not found
            raise LitlabError(
                f"job {num} of {len(jobs)} ({name}) is refused, so none was started: {err}"
            ) from None


def job_names(jobs: list[list[str]]) -> list[str]:
    """Each job told apart from the others: the overrides it does not share with all of them."""
    common = set.intersection(*(set(job) for job in jobs)) if len(jobs) > 1 else set()
    return [" ".join(o for o in job if o not in common) for job in jobs]


def _job_config(config: DictConfig, overrides: list[str], num: int) -> DictConfig:
    """Job ``num``'s config, as Hydra's launcher and ``run_job`` make it (without the ``hydra``
    node); HydraConfig is left set to the job, as ``${hydra:...}`` in its config reads it."""
    from hydra.core.global_hydra import GlobalHydra

    job = GlobalHydra.instance().config_loader().load_sweep_config(config, overrides)
    with open_dict(job):
        job.hydra.job.num = num
    HydraConfig.instance().set_config(job)  # hydra.sweep.dir reads it
    runtime = job.hydra.runtime
    with read_write(runtime), open_dict(runtime):
        runtime.output_dir = str(Path(job.hydra.sweep.dir, str(job.hydra.sweep.subdir)).absolute())
    HydraConfig.instance().set_config(job)
    task = copy.deepcopy(job)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


class SweepResults(Callback):
    """Registered by configs/hydra/callbacks/grid.yaml, which litlab-train adds under ``-m``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra has read the command line: from here on it is the one the user typed (the
        # SLURM launcher records it in each job's run.json).
        if GRID in sys.argv:
            sys.argv.remove(GRID)
        if config.get("hparams_search"):
            # sys.exit, not LitlabError: Hydra turns a callback's exception into a warning and
            # goes on; SystemExit passes through it as this one line, before any job starts.
            sys.exit(f"litlab: error: {search_refused(sys.argv)}")
        try:
            check_jobs(config)  # leaves HydraConfig set to the last job it checked
        except LitlabError as err:
            sys.exit(f"litlab: error: {err}")
        # hydra.sweep.dir reads paths.log_dir and name, which use the ${hydra:...} resolver; in a
        # single run Hydra sets HydraConfig before resolving hydra.run.dir, but the sweeper
        # resolves the sweep dir before any job has set it. Set it here, as a run would.
        HydraConfig.instance().set_config(config)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        from lightning.pytorch.utilities import rank_zero_only  # the job has imported it

        # With the SLURM launcher every DDP rank runs the job: only the first records it.
        if rank_zero_only.rank != 0:
            return
        value, err = job_outcome(job_return)
        objective = float(value) if isinstance(value, int | float) else None
        ok = job_return.status == JobStatus.COMPLETED and finite(objective)
        error = first_line(err) if err else ""
        if job_return.status == JobStatus.COMPLETED and not ok:
            error = f"{config.monitor.metric} was {objective}"
        status = "complete" if ok else "cancelled" if isinstance(err, JobCancelled) else "failed"
        record_job(config, Path(config.hydra.runtime.output_dir), status, objective, error)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if any(sweep_dir.rglob(JOB_FILE)):
            from litlab.sweep import pictures

            path = refresh(sweep_dir)
            rows, metric, mode = grid_rows(sweep_dir)
            pictures.draw(pictures.grid_study(rows, mode), sweep_dir, metric)
            print(f"sweep results: {path}")
