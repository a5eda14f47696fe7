"""``litlab-train``'s run. ``plan`` checks and builds everything and writes nothing; then
``fit_and_test`` reads top to bottom: lock the run dir and open run.json, fit, test, summary,
close. The phases are logged to the run's ``train.log`` by ``run.callbacks.LogPhases``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from litlab import Interrupted, LitlabError
from litlab.config import check_config, to_plain
from litlab.config.values import seed_for_numpy
from litlab.files import write_text
from litlab.models import LitTask
from litlab.run import init_from, outcome, resume, tune
from litlab.run.build import build_all
from litlab.run.checkpoints import Checkpoint, open_checkpoint, use_latest
from litlab.tracking import provenance, redaction, wandb_run
from litlab.tracking.manifest import Manifest
from litlab.tracking.manifest import read as read_manifest
from litlab.tracking.report import print_summary

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)


@dataclass
class Run:
    """What a finished run leaves in memory: for notebooks, tests and sweeps."""

    cfg: DictConfig
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def objective(self) -> float | None:
        return self.metrics.get(self.cfg.monitor.metric)


@dataclass
class Plan:
    """A checked run, built but not started: nothing has been written yet."""

    cfg: DictConfig
    config: dict  # the resolved config, secrets hidden: what is saved, logged and checkpointed
    resumed: Checkpoint | None  # the checkpoint a resume (ckpt_path=...) continues from
    previous: dict  # the run.json of the run this one resumes ({} for a new run)
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    provenance: dict  # gathered and redacted once: run.json and wandb manifest the same


def fit_and_test(cfg: DictConfig, callbacks: Sequence = ()) -> Run:
    """Check the config, build everything, fit, test the best checkpoint, print a summary.

    ``callbacks`` join the configured ones: sweeps add Optuna's pruning callback this way.
    ``run.json`` in the run dir says how it went, from the moment the run passed its checks.
    """
    planned = plan(cfg, callbacks)  # a refused run stops here, having written nothing
    cfg, data, model, trainer = planned.cfg, planned.datamodule, planned.model, planned.trainer
    run_dir = cfg.paths.output_dir
    resumed = str(planned.resumed.path) if planned.resumed else None
    manifest = Manifest(run_dir, planned.provenance, previous=planned.previous)
    status, metrics, ckpts = "failed", {}, {}
    try:
        with _lock(run_dir), manifest:
            if cfg.get("tune"):  # Lightning's finders: what they find replaces the config's
                tune.tune(planned, manifest)
            _start(planned, manifest)  # run.json's first manifest, config.yaml, hyperparameters
            try:
                if cfg.get("train", True):
                    trainer.fit(model, data, ckpt_path=resumed, weights_only=True)
                    ckpts = outcome.checkpoints(trainer)  # before testing restores its state
                    metrics.update(outcome.metrics(trainer))
                    outcome.check_finite(metrics, "val/")
                    metrics.update(_fit_summary(model, trainer))
                if cfg.get("test", True):
                    weights = ckpts.get("best") if cfg.get("train", True) else resumed
                    trainer.test(model, data, ckpt_path=weights, weights_only=True, verbose=False)
                    metrics.update(outcome.metrics(trainer))
                    outcome.check_finite(metrics, "test/")
                paths = {"run dir": run_dir, "best checkpoint": ckpts.get("best")}
                print_summary(f"litlab · {cfg.name} · seed {cfg.seed}", metrics, paths)
                status = "success"
            except Exception as err:
                if outcome.pruned(err):  # a sweep's pruner stopped it: run.json and wandb say so
                    status = "pruned"
                raise
            finally:
                _close(planned, manifest, status, metrics, ckpts)
    except (KeyboardInterrupt, SystemExit) as err:
        if isinstance(err, KeyboardInterrupt) or manifest.interrupted:
            raise Interrupted(run_dir) from err
        raise
    return Run(cfg, data, model, trainer, metrics)


def plan(cfg: DictConfig, callbacks: Sequence = ()) -> Plan:
    """Every check a run can fail before it starts, then everything built. Writes nothing, so a
    refused run leaves no trace (and a refused resume leaves the run dir it names as it was)."""
    check_config(cfg)
    init_from.check(cfg)
    resumed, previous, parent = None, {}, None
    use_latest(cfg, cfg.name, resume=True)  # the run dir ${litlab_run_dir:} chose, found again
    if cfg.get("ckpt_path"):
        prefer = "last" if cfg.get("train", True) else "best"
        resumed = open_checkpoint(cfg.ckpt_path, prefer=prefer)
        cfg = resume.resumed_config(cfg, resumed, provenance.overrides())
        check_config(cfg)
        previous = read_manifest(cfg.paths.output_dir)
    config = redaction.redact(to_plain(cfg))
    source = redaction.redact(OmegaConf.to_container(cfg, resolve=False))
    # Before anything is built: the model's initial weights come from the seed too.
    L.seed_everything(seed_for_numpy(cfg.seed), workers=True, verbose=False)
    datamodule, model, trainer = build_all(cfg, config, previous.get("wandb"), callbacks, source)
    if not isinstance(model, LitTask):  # the figures, summary and predictions rely on it
        raise LitlabError(
            f"model: {type(model).__name__} is not a litlab.models.LitTask; subclass it (its "
            "contract is at the top of litlab/models/base.py)."
        )
    if resumed:
        _check_weights(model, resumed)
    elif cfg.get("init_from"):  # after seeding: the tensors it does not load keep the seed's
        parent = init_from.load_weights(model, cfg)
    info("config checked: %s, seed %s, run dir %s", cfg.name, cfg.seed, cfg.paths.output_dir)
    # Redacted before it goes to wandb (run.json redacts whatever it records anyway).
    gathered = redaction.redact(
        {
            **provenance.gather(),
            "hardware": provenance.hardware(trainer),
            "parameters": provenance.parameter_counts(model),
            **({"init_from": parent} if parent else {}),  # a resume keeps the first attempt's
        }
    )
    info("model built: %s, %s parameters", type(model).__name__, gathered["parameters"]["total"])
    return Plan(cfg, config, resumed, previous, datamodule, model, trainer, gathered)


def _start(planned: Plan, manifest: Manifest) -> None:
    """What a started run records before it fits: run.json, config.yaml, the loggers' config."""
    cfg, trainer = planned.cfg, planned.trainer
    wandb = wandb_run.planned_run(trainer.loggers, planned.config.get("logger"))
    manifest.update(
        name=cfg.name,
        seed=cfg.seed,
        config=planned.config,
        resumed_from=str(planned.resumed.path) if planned.resumed else None,
        **({"wandb": wandb} if wandb else {}),  # a resumed run keeps its earlier manifest
    )
    _save_config(planned.config, cfg.paths.output_dir)
    started_with_it = wandb_run.wandb_loggers(trainer.loggers)  # wandb's run gets it as it starts
    for lg in trainer.loggers:
        if lg not in started_with_it:
            lg.log_hyperparams(planned.config)
    told = ("overrides", "git", "versions", "hardware", "parameters")
    story = {k: planned.provenance[k] for k in told}
    # In the background with litlab's WandbLogger: the run trains while wandb starts.
    wandb_run.start(trainer.loggers, planned.config, story, planned.provenance["packages"])


def _fit_summary(model: L.LightningModule, trainer: L.Trainer) -> dict[str, float]:
    """The task's own summary of what it learnt (``LitTask.summary``), logged as ``fit/<key>``."""
    fitted = {f"fit/{k}": v for k, v in model.summary().items()}
    for lg in trainer.loggers:
        lg.log_metrics(fitted, step=trainer.global_step)
    return fitted


def _close(planned: Plan, manifest: Manifest, status: str, metrics: dict, ckpts: dict):
    """Loggers closed and run.json completed, however the run ended."""
    trainer = planned.trainer
    where = outcome.close_loggers(trainer.loggers, status, metrics)
    manifest.interrupted = trainer.interrupted
    manifest.pruned = status == "pruned"
    manifest.update(
        metrics=metrics,
        checkpoints=ckpts or outcome.checkpoints(trainer),
        figures=sorted(str(f) for f in Path(planned.cfg.paths.output_dir).glob("figures/*.png")),
        loggers=outcome.logger_dirs(trainer.loggers),
        **({"wandb": where} if where else {}),
    )
    info("run %s", "finished" if status == "success" else status)


def _lock(run_dir: str):
    return resume.run_lock(run_dir) if rank_zero_only.rank == 0 else nullcontext()


@rank_zero_only
def _save_config(config: dict, output_dir: str) -> None:
    text = OmegaConf.to_yaml(OmegaConf.create(config))
    write_text(Path(output_dir) / "config.yaml", text)


def _check_weights(model: L.LightningModule, checkpoint: Checkpoint) -> None:
    """Refuse, before anything is written, a checkpoint whose weights this model cannot take."""
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in checkpoint.data["state_dict"].items()}
    if ours == theirs:
        return
    key = next(k for k in sorted(ours.keys() | theirs.keys()) if ours.get(k) != theirs.get(k))
    raise LitlabError(
        f"{checkpoint.path} does not fit this model ({key}: {theirs.get(key, 'missing')} in the "
        f"checkpoint, {ours.get(key, 'missing')} here). Resume with the model settings of the "
        "run that wrote it."
    )
