"""``litlab-train``'s run, in the order it happens: check, seed, build, record, fit, test, report,
close. Each phase is logged to the run's ``train.log``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from litlab import Interrupted, LitlabError
from litlab.config import check_config, to_plain
from litlab.config.values import seed_for_numpy
from litlab.files import write_text
from litlab.run import outcome, resume
from litlab.run.build import build_all
from litlab.run.checkpoints import Found, open_checkpoint
from litlab.tracking import manifest as run_record
from litlab.tracking import provenance, redaction, wandb_run
from litlab.tracking.report import print_summary

log = logging.getLogger(__name__)


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
    plain: dict  # the resolved config, secrets hidden: what is saved and logged
    resumed: Found | None
    previous: dict  # the run.json of the run this one resumes ({} for a new run)
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    provenance: dict  # gathered once: run.json and wandb record the same


def fit_and_test(cfg: DictConfig, callbacks: Sequence = ()) -> Run:
    """Check the config, build everything, fit, test the best checkpoint, print a summary.

    ``callbacks`` join the configured ones: sweeps add Optuna's pruning callback this way.
    ``run.json`` in the run dir says how it went, from the moment the run passed its checks.
    """
    p = plan(cfg, callbacks)
    run_dir = p.cfg.paths.output_dir
    record = run_record.Manifest(run_dir, p.provenance, previous=p.previous)
    try:
        with _lock(run_dir), record:
            return _run(p, record)
    except (KeyboardInterrupt, SystemExit) as err:
        if isinstance(err, KeyboardInterrupt) or record.interrupted:
            raise Interrupted(run_dir) from err
        raise


def plan(cfg: DictConfig, callbacks: Sequence = ()) -> Plan:
    """Every check a run can fail before it starts, then everything built. Writes nothing, so a
    refused run leaves no trace (and a refused resume leaves the run dir it names as it was)."""
    check_config(cfg)
    found, previous = None, {}
    if cfg.get("ckpt_path"):
        train = cfg.get("train", True)
        found = open_checkpoint(cfg.ckpt_path, prefer="last" if train else "best")
        cfg = resume.resumed_config(cfg, found, provenance.overrides())
        check_config(cfg)
        previous = run_record.read(cfg.paths.output_dir)
    plain = redaction.redact(to_plain(cfg))
    source = redaction.redact(OmegaConf.to_container(cfg, resolve=False))
    # Before anything is built: the model's initial weights come from the seed too.
    L.seed_everything(seed_for_numpy(cfg.seed), workers=True, verbose=False)
    extra = [*callbacks, DataSizes()]
    datamodule, model, trainer = build_all(cfg, plain, previous.get("wandb"), extra, source)
    if found:
        _check_weights(model, found)
    _say("config checked: %s, seed %s, run dir %s", cfg.name, cfg.seed, cfg.paths.output_dir)
    # Redacted here, once, as it goes to run.json and to wandb alike.
    facts = redaction.redact(
        {
            **provenance.gather(),
            "hardware": provenance.hardware(trainer),
            "parameters": provenance.parameter_counts(model),
        }
    )
    _say("model built: %s, %s parameters", type(model).__name__, facts["parameters"]["total"])
    return Plan(cfg, plain, found, previous, datamodule, model, trainer, facts)


def _run(p: Plan, record: run_record.Manifest) -> Run:
    cfg, trainer, model, datamodule = p.cfg, p.trainer, p.model, p.datamodule
    planned = wandb_run.planned_run(trainer.loggers, p.plain.get("logger"))
    record.update(
        name=cfg.name,
        seed=cfg.seed,
        config=p.plain,
        resumed_from=str(p.resumed.path) if p.resumed else None,
        **({"wandb": planned} if planned else {}),  # a resumed run keeps its earlier record
    )
    _save_config(p.plain, cfg.paths.output_dir)
    status, metrics, ckpts = "failed", {}, {}
    try:
        for lg in trainer.loggers:
            lg.log_hyperparams(p.plain)
        wandb_run.log_run_info(trainer.loggers, _told_wandb(p.provenance))
        if cfg.get("train", True):
            ckpts = _fit(p, metrics)
        if cfg.get("test", True):
            _test(p, ckpts.get("best"), metrics)
        title = f"litlab · {cfg.name} · seed {cfg.seed}"
        paths = {"run dir": cfg.paths.output_dir, "best checkpoint": ckpts.get("best")}
        print_summary(title, metrics, paths)
        status = "success"
        return Run(cfg, datamodule, model, trainer, metrics)
    finally:
        _close(p, record, status, metrics, ckpts)


def _fit(p: Plan, metrics: dict[str, float]) -> dict[str, str | None]:
    trainer, model = p.trainer, p.model
    hw = p.provenance["hardware"]
    _say("fit started: %s epoch(s) on %s x %s, precision %s", trainer.max_epochs, hw["devices"],
         hw["accelerator"], hw["precision"])  # fmt: skip
    resumed = str(p.resumed.path) if p.resumed else None
    trainer.fit(model, p.datamodule, ckpt_path=resumed, weights_only=True)
    # Before testing: testing a checkpoint restores the callback's state from that file.
    ckpts = outcome.checkpoints(trainer)
    metrics.update(outcome.metrics(trainer))
    outcome.check_finite(metrics, "val/")
    if hasattr(model, "summary"):
        fitted = {f"fit/{k}": v for k, v in model.summary().items()}
        metrics.update(fitted)
        for lg in trainer.loggers:
            lg.log_metrics(fitted, step=trainer.global_step)
    _say("fit ended at epoch %s, step %s; best checkpoint %s", trainer.current_epoch,
         trainer.global_step, ckpts["best"])  # fmt: skip
    return ckpts


def _test(p: Plan, best: str | None, metrics: dict[str, float]) -> None:
    trained_here = p.cfg.get("train", True)
    weights = best or (None if trained_here else str(p.resumed.path))
    p.trainer.test(p.model, p.datamodule, ckpt_path=weights, weights_only=True, verbose=False)
    tested = outcome.metrics(p.trainer)
    metrics.update(tested)
    _say("tested %s: %s", weights or "the final weights", _listed(tested, "test/"))
    outcome.check_finite(metrics, "test/")


def _close(p: Plan, record, status: str, metrics: dict, ckpts: dict) -> None:
    """Loggers closed and run.json completed, however the run ended."""
    trainer = p.trainer
    where = outcome.close_loggers(trainer.loggers, status, metrics)
    record.interrupted = trainer.interrupted
    record.update(
        metrics=metrics,
        checkpoints=ckpts or outcome.checkpoints(trainer),
        figures=sorted(str(f) for f in Path(p.cfg.paths.output_dir).glob("figures/*.png")),
        loggers=outcome.logger_dirs(trainer.loggers),
        **({"wandb": where} if where else {}),
    )
    _say("run %s", "finished" if status == "success" else "failed")


def _told_wandb(facts: dict) -> dict:
    keys = ("overrides", "git", "versions", "hardware", "parameters")
    return {k: facts[k] for k in keys}


def _lock(run_dir: str):
    return resume.run_lock(run_dir) if rank_zero_only.rank == 0 else nullcontext()


@rank_zero_only
def _save_config(plain: dict, output_dir: str) -> None:
    text = OmegaConf.to_yaml(OmegaConf.create(plain))
    write_text(Path(output_dir) / "config.yaml", text)


@rank_zero_only
def _say(message: str, *args) -> None:
    log.info(message, *args)


def _listed(metrics: dict[str, float], prefix: str) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()) if k.startswith(prefix))


class DataSizes(Callback):
    """Logs how much data each stage sees, once its loaders exist."""

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        train = _samples(trainer.train_dataloader)
        val = sum(_samples(dl) or 0 for dl in _as_list(trainer.val_dataloaders))
        _say("data ready: %s training samples (%s batches per epoch), %s validation samples",
             train, trainer.num_training_batches, val)  # fmt: skip

    @override
    def on_test_start(self, trainer, pl_module) -> None:
        test = sum(_samples(dl) or 0 for dl in _as_list(trainer.test_dataloaders))
        _say("testing on %s samples", test)


def _as_list(loaders) -> list:
    return list(loaders) if isinstance(loaders, list | tuple) else [loaders] if loaders else []


def _samples(loader) -> int | None:
    """A loader's sample count: its dataset's length, or what a tensor loader says it holds."""
    dataset = getattr(loader, "dataset", None)
    if dataset is not None and hasattr(dataset, "__len__"):
        return len(dataset)
    return getattr(loader, "num_samples", None)


def _check_weights(model: L.LightningModule, found: Found) -> None:
    """Refuse, before anything is written, a checkpoint whose weights this model cannot take."""
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in found.ckpt["state_dict"].items()}
    if ours == theirs:
        return
    key = next(k for k in sorted(ours.keys() | theirs.keys()) if ours.get(k) != theirs.get(k))
    raise LitlabError(
        f"{found.path} does not fit this model ({key}: {theirs.get(key, 'missing')} in the "
        f"checkpoint, {ours.get(key, 'missing')} here). Resume with the model settings of the "
        "run that wrote it."
    )
