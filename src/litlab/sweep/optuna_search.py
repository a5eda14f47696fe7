"""The Optuna study loop: each trial is a normal litlab run in its own dir under the sweep dir.

The study lives in a database (SQLite in the sweep dir unless ``hparams_search.storage`` names
another), so rerunning the same command continues it, and any number of processes or machines
pointing at the same database share the work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError
from litlab.config import compose
from litlab.sweep import results
from litlab.sweep.space import Param, override, parse_space

log = logging.getLogger(__name__)

WORKER_ENV = "LITLAB_SWEEP_WORKER"  # set in the extra processes n_jobs > 1 starts
# Settings that change how a study runs, not what it searches: they leave its name alone.
_RUN_ONLY = ("hparams_search.n_trials", "hparams_search.n_jobs", "hparams_search.storage")
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


@dataclass
class Sweep:
    cfg: DictConfig
    base: list[str]  # the user's overrides, minus the sweep's own settings
    space: list[Param]
    name: str
    dir: Path
    storage_url: str
    metric: str
    direction: str  # minimize or maximize

    @property
    def fixed(self) -> list[str]:
        return [override(p.key, p.values[0]) for p in self.space if p.kind == "fixed"]


def _direction(value: str) -> str:
    d = {"min": "minimize", "max": "maximize"}.get(value, value)
    if d not in ("minimize", "maximize"):
        raise LitlabError(f"hparams_search.direction is {value!r}: use min or max.")
    return d


def _study_name(choice: str, base: list[str], hs: DictConfig) -> str:
    """``<space>-<hash>``: the same command finds the same study, a changed one starts afresh."""
    what = {
        "overrides": sorted(o for o in base if not o.lstrip("+~").startswith(_RUN_ONLY)),
        "params": OmegaConf.to_container(hs.params, resolve=True),
        "metric": hs.metric,
        "direction": hs.direction,
    }
    digest = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    return f"{choice}-{digest}"


def plan(overrides: list[str]) -> Sweep:
    """Compose the config a sweep command gives and read its search settings."""
    from hydra.core.hydra_config import HydraConfig

    cfg = compose(overrides, output_dir=Path.cwd())
    hs = cfg.get("hparams_search")
    if not hs:
        raise LitlabError(
            "No search space: add hparams_search=<name> (one of configs/hparams_search/), "
            "e.g. litlab-sweep experiment=linear hparams_search=linear."
        )
    choice = HydraConfig.get().runtime.choices.get("hparams_search") or "sweep"
    base = [o for o in overrides if not o.lstrip("+~").startswith("hparams_search")]
    name = hs.study_name or _study_name(choice, overrides, hs)
    sweep_dir = Path(hs.dir).expanduser().resolve() / name
    return Sweep(
        cfg=cfg,
        base=base,
        space=parse_space(hs.params),
        name=name,
        dir=sweep_dir,
        storage_url=hs.storage or f"sqlite:///{sweep_dir / 'optuna.db'}",
        metric=hs.metric,
        direction=_direction(hs.direction),
    )


def _storage(sweep: Sweep, heartbeat: int):
    import optuna
    from optuna.storages import RDBStorage

    # Heartbeats are marked experimental in Optuna, and are what makes a killed trial recoverable.
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    # A trial whose process died (killed, node lost) is failed and its point retried once.
    try:  # Optuna >= 4.9
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        kwargs = {"heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
    except ImportError:
        from optuna.storages import RetryFailedTrialCallback

        kwargs = {"failed_trial_callback": RetryFailedTrialCallback(max_retry=1)}
    if sweep.storage_url.startswith("sqlite"):
        sweep.dir.mkdir(parents=True, exist_ok=True)
        # Several local processes write to one file: wait for the lock instead of failing.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        return RDBStorage(
            sweep.storage_url,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            **kwargs,
        )
    except (ImportError, optuna.exceptions.StorageInternalError, ValueError) as err:
        raise LitlabError(f"hparams_search.storage={sweep.storage_url!r}: {err}") from err


def _check_trial_devices(cfg: DictConfig) -> None:
    strategy = str(cfg.trainer.get("strategy", ""))
    if strategy.startswith("ddp") and cfg.trainer.get("devices") not in (1, "1"):
        raise LitlabError(
            "litlab-sweep runs trials inside its own process, so a trial cannot start DDP ranks. "
            "Use one device per trial (n_jobs for parallel trials), or a grid with "
            "litlab-train -m for DDP trials."
        )


def load_study(sweep: Sweep, worker: int = 0):
    import optuna

    hs = sweep.cfg.hparams_search
    study = optuna.create_study(
        study_name=sweep.name,
        storage=_storage(sweep, int(hs.heartbeat)),
        direction=sweep.direction,
        load_if_exists=True,
    )
    sampler_cfg = hs.get("sampler")
    if sampler_cfg:
        extra = {}
        if "seed" in sampler_cfg and sampler_cfg.seed is not None:
            # A seeded sampler restarted (resume) or run twice (n_jobs) would redraw the same
            # first points: shift the seed by what the study already holds and by worker.
            extra["seed"] = int(sampler_cfg.seed) + len(study.trials) + 1000 * worker
        study.sampler = instantiate(sampler_cfg, **extra)
    study.pruner = instantiate(hs.pruner) if hs.get("pruner") else optuna.pruners.NopPruner()
    return study


def _group(cfg: DictConfig, name: str) -> list[str]:
    """Trials of one study share a W&B group, when a wandb logger is configured."""
    logger = cfg.get("logger") or {}
    return [f"logger.wandb.group={name}"] if "wandb" in logger and logger.wandb else []


def objective(sweep: Sweep):
    import optuna
    from optuna_integration import PyTorchLightningPruningCallback

    from litlab.run import fit_and_test

    def run_trial(trial: optuna.Trial) -> float:
        params = [override(p.key, p.suggest(trial)) for p in sweep.space if p.kind != "fixed"]
        run_dir = sweep.dir / "trials" / f"{trial.number:04d}"
        overrides = [*sweep.base, *sweep.fixed, *params]
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("pid", os.getpid())
        try:
            cfg = compose([*overrides, *_group(sweep.cfg, sweep.name)], output_dir=run_dir)
            _check_trial_devices(cfg)
            pruning = PyTorchLightningPruningCallback(trial, monitor=sweep.metric)
            run = fit_and_test(cfg, callbacks=[pruning])
        except optuna.TrialPruned:
            raise
        except Exception as err:  # recorded on the trial; study.optimize(catch=...) goes on
            trial.set_user_attr("error", (str(err).splitlines() or [type(err).__name__])[0])
            raise
        metrics = {k: v for k, v in run.metrics.items() if not k.endswith(("_step", "_epoch"))}
        trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if math.isfinite(v)})
        value = metrics.get(sweep.metric)
        if value is None:
            raise LitlabError(
                f"hparams_search.metric {sweep.metric!r} was not logged; the run logged: "
                f"{', '.join(sorted(metrics))}."
            )
        if not math.isfinite(value):
            trial.set_user_attr("error", f"{sweep.metric} was {value}")
        return value  # Optuna records NaN as a failed trial

    return run_trial


def optimize(sweep: Sweep, worker: int = 0) -> None:
    """Run trials until the study holds n_trials finished ones (this process's share)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = load_study(sweep, worker)
    n_trials = int(sweep.cfg.hparams_search.n_trials)
    states = tuple(TrialState[s] for s in FINISHED)
    left = n_trials - len(study.get_trials(deepcopy=False, states=states))
    if left <= 0:
        log.info("study %s already has %d finished trials", sweep.name, n_trials)
        return
    study.optimize(
        objective(sweep),
        n_trials=left,
        catch=(Exception,),  # a crashed trial is marked FAIL; the next one starts
        # Other processes add trials too: stop once the study as a whole has enough.
        callbacks=[MaxTrialsCallback(n_trials, states=states)],
        gc_after_trial=True,
    )


def start_workers(argv: list[str], n: int) -> list[subprocess.Popen]:
    """``n`` more processes running this same sweep command against the same storage."""
    cmd = [sys.executable, "-m", "litlab.sweep", *argv]
    return [subprocess.Popen(cmd, env={**os.environ, WORKER_ENV: str(i)}) for i in range(1, n + 1)]


def rows(study) -> list[results.TrialRow]:
    out = []
    for t in study.get_trials(deepcopy=False):
        status = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
            t.state.name, t.state.name.lower()
        )
        value = t.value if t.state.name == "COMPLETE" else None
        out.append(
            results.TrialRow(
                name=str(t.number),
                overrides=list(t.user_attrs.get("overrides", [])),
                status=status,
                objective=value,
                metrics=dict(t.user_attrs.get("metrics", {})),
                run_dir=t.user_attrs.get("run_dir", ""),
                error=t.user_attrs.get("error", "") if status == "failed" else "",
            )
        )
    return out


def write_results(sweep: Sweep) -> Path:
    import optuna

    study = optuna.load_study(study_name=sweep.name, storage=sweep.storage_url)
    mode = "max" if sweep.direction == "maximize" else "min"
    return results.write_results(rows(study), sweep.dir, sweep.metric, mode)
