"""``litlab-eval``'s run: test a checkpoint with its run's own config, and manifest it in
``eval.json``."""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError, first_line
from litlab.config import check_targets, to_plain
from litlab.run import outcome
from litlab.run.build import build, build_logger, build_saved_data, saved_config
from litlab.run.checkpoints import Checkpoint, open_checkpoint, sha256, use_latest
from litlab.tracking import provenance, redaction, wandb_run
from litlab.tracking.manifest import Manifest
from litlab.tracking.manifest import read as read_manifest
from litlab.tracking.report import print_summary

EVAL_FILE = "eval.json"


class EvalManifest(Manifest):
    """``eval.json`` in the evaluation's own run dir: run.json's provenance and status (command,
    overrides, git, versions, host; ``running`` -> ``finished``/``failed``/``interrupted``), with
    a failure's error on one line. Nothing is written before ``__enter__``."""

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir, provenance.gather())
        self.path = Path(run_dir) / EVAL_FILE

    def __exit__(self, kind, err, tb) -> None:
        super().__exit__(kind, err, tb)
        if self.data.get("status") == "failed":
            try:
                self.update(error=first_line(err))
            except LitlabError:
                pass  # the write failed above already, and said so; the run's error follows


@dataclass
class EvalPlan:
    """A checked evaluation, built but not started: nothing has been written yet."""

    cfg: DictConfig
    plain: dict  # the eval's own config, redacted
    checkpoint: Checkpoint
    saved: DictConfig  # the trained run's config, from the checkpoint
    trained: dict  # the trained run's run.json ({} for a checkpoint outside a run dir)
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    loggers: list
    resumes_wandb: bool  # a wandb logger continues the trained run's own wandb run


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data and model from the config stored in the checkpoint, then test them, at the
    precision the run trained with unless ``trainer.precision`` says otherwise.

    The evaluation is recorded in ``<its run dir>/eval.json`` once it passed its checks; a
    refused one (no checkpoint, a bad value, no data) writes nothing. Loggers get the metrics as
    ``eval/test/...``; ``logger=wandb`` adds them to the trained run's own wandb run.
    """
    planned = plan_eval(cfg)
    with EvalManifest(cfg.paths.output_dir) as manifest:
        return _evaluate(planned, manifest)


def plan_eval(cfg: DictConfig) -> EvalPlan:
    """Every check an evaluation can fail, then everything built; writes nothing."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise LitlabError(
            "litlab-eval needs ckpt_path=<checkpoint file or run dir>, e.g. "
            "litlab-eval ckpt_path=logs/mnist/runs/<time>."
        )
    use_latest(cfg, cfg.experiment_name)
    checkpoint = open_checkpoint(cfg.ckpt_path, prefer="best")
    saved = saved_config(checkpoint)  # refused unless litlab trusts what it builds
    if cfg.get("batch_size") is not None:
        saved.data.eval_batch_size = cfg.batch_size
    check_targets(OmegaConf.create({"data": saved.data, "trainer": to_plain(cfg.trainer)}))
    if cfg.get("logger"):
        wandb_run.check_modes(cfg.logger)
        check_targets(cfg.logger, "logger")
    datamodule = build_saved_data(saved, cfg.get("data_dir"))
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()  # data that is not there is refused before anything is written
    model = build(saved.model, "model")
    precision = cfg.trainer.get("precision") or _trained_precision(saved)
    trainer = build(cfg.trainer, "trainer", logger=False, callbacks=[], precision=precision)
    plain = redaction.redact(to_plain(cfg))
    trained = read_manifest(_trained_run_dir(checkpoint))
    loggers, resumes = _eval_loggers(cfg, plain, saved, trained.get("wandb"))
    return EvalPlan(
        cfg, plain, checkpoint, saved, trained, datamodule, model, trainer, loggers, resumes
    )


def _trained_run_dir(checkpoint: Checkpoint) -> Path:
    """``<run dir>/checkpoints/best.ckpt`` -> ``<run dir>``."""
    return checkpoint.path.resolve().parent.parent


def _eval_loggers(cfg: DictConfig, plain: dict, saved: DictConfig, trained_wandb: dict | None):
    """The configured loggers; a wandb one continues the trained run's wandb run when it has
    one (same id and project: it is "resumed"; offline that is a new local part of it, which
    ``wandb sync`` adds to the same run)."""
    loggers, resumes = [], False
    for key, node in (cfg.get("logger") or {}).items():
        if not node:
            continue
        if wandb_run.is_wandb(node) and trained_wandb and trained_wandb.get("id"):
            resume = _wandb_resume_kwargs(trained_wandb, node.get("mode"), saved)
            loggers.append(build_logger(key, node, plain, trained_wandb, **resume))
            resumes = True
        else:
            loggers.append(build_logger(key, node, plain, None))
    return loggers, resumes


def _wandb_resume_kwargs(trained: dict, mode: str | None, saved: DictConfig) -> dict:
    kwargs = {
        "project": trained.get("project"),
        "tags": list(saved.get("tags") or []) or None,  # None: the run keeps its own tags
        # Online, a run the server does not have (never synced, or another entity's) fails
        # here and falls back to a new run; offline there is nothing to check.
        "resume": "allow" if wandb_run.is_offline(mode) else "must",
    }
    url = trained.get("url") or ""  # https://wandb.ai/<entity>/<project>/runs/<id>
    parts = url.split("/")
    if len(parts) >= 7 and parts[-2] == "runs":
        kwargs["entity"] = parts[-4]
    return kwargs


def _start_eval_wandb(planned: EvalPlan) -> bool:
    """Start the wandb run now, so a run that cannot be resumed becomes a new one (said in one
    line) instead of failing the evaluation. Returns whether the trained run was resumed."""
    resumed = planned.resumes_wandb
    for i, lg in enumerate(planned.loggers):
        if not isinstance(lg, WandbLogger):
            continue
        if not resumed and rank_zero_only.rank == 0:
            print(
                "litlab: the trained run has no wandb run (its run.json names none); the "
                "evaluation is logged to a new wandb run.",
                file=sys.stderr,
            )
        try:
            lg.experiment  # noqa: B018 - starts wandb.init
        except Exception as err:
            if not resumed:
                raise
            run_id = lg.version
            print(
                f"litlab: wandb run {run_id} could not be resumed ({first_line(err)}); the "
                "evaluation is logged to a new wandb run.",
                file=sys.stderr,
            )
            key = next(k for k, n in planned.cfg.logger.items() if n and wandb_run.is_wandb(n))
            planned.loggers[i] = build_logger(key, planned.cfg.logger[key], planned.plain, None)
            planned.loggers[i].experiment  # noqa: B018
            resumed = False
    return resumed


def _evaluate(planned: EvalPlan, manifest: EvalManifest) -> dict[str, float]:
    cfg, trainer, checkpoint = planned.cfg, planned.trainer, planned.checkpoint
    step = int(checkpoint.data.get("global_step") or 0)
    manifest.update(
        name=cfg.name,
        config=planned.plain,
        checkpoint=_checkpoint_info(checkpoint),
        trained=_trained_info(planned),
        data={"config": redaction.redact(to_plain(planned.saved.data)), "split": "test"},
        hardware=provenance.hardware(trainer),
    )
    status = "failed"
    metrics: dict[str, float] = {}
    logged: dict[str, float] = {}
    resumed = False
    try:
        resumed = _start_eval_wandb(planned)
        for lg in planned.loggers:
            if not (resumed and isinstance(lg, WandbLogger)):  # the trained run keeps its config
                lg.log_hyperparams(
                    {**planned.plain, "trained": redaction.redact(to_plain(planned.saved))}
                )
        with warnings.catch_warnings():
            # Lightning asks for the training callbacks to restore their state; testing needs
            # only the weights, so the hint is noise on every eval.
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
            trainer.test(
                planned.model,
                planned.datamodule,
                ckpt_path=str(checkpoint.path),
                weights_only=True,
                verbose=False,
            )
        metrics = outcome.metrics(trainer)
        outcome.check_finite(metrics, "test/")
        # eval/test/acc next to the training's own test/acc: the same numbers, now recorded.
        logged = {f"eval/{k}": v for k, v in metrics.items()}
        for lg in planned.loggers:
            lg.log_metrics(logged, step=step)
        title = f"litlab-eval · {planned.saved.name} · seed {planned.saved.seed}"
        print_summary(
            title, metrics, {"checkpoint": str(checkpoint.path), "record": str(manifest.path)}
        )
        status = "success"
        return metrics
    finally:
        where = outcome.close_loggers(planned.loggers, status, logged)
        manifest.interrupted = trainer.interrupted
        manifest.update(
            metrics=metrics,
            loggers=outcome.logger_dirs(planned.loggers),
            **({"wandb": {**where, "resumed": resumed}} if where else {}),
        )


def _checkpoint_info(checkpoint: Checkpoint) -> dict:
    return {
        "path": str(checkpoint.path.resolve()),
        "sha256": sha256(checkpoint.path),
        "epoch": checkpoint.data.get("epoch"),
        "global_step": checkpoint.data.get("global_step"),
    }


def _trained_info(planned: EvalPlan) -> dict:
    """The trained run this checkpoint comes from, and what it measured itself."""
    return {
        "run_dir": str(_trained_run_dir(planned.checkpoint)) if planned.trained else None,
        "name": planned.saved.get("name"),
        "seed": planned.saved.get("seed"),
        "test_metrics": {
            k: v for k, v in (planned.trained.get("metrics") or {}).items() if k.startswith("test/")
        },
        "wandb": planned.trained.get("wandb"),
    }


def _trained_precision(saved: DictConfig) -> str:
    """The run's own precision; fp16 AMP exists on GPUs only, so a CPU runs bf16 instead."""
    import torch

    precision = str(OmegaConf.select(saved, "trainer.precision", default=None) or "32-true")
    if precision.startswith("16") and not torch.cuda.is_available():
        return "bf16-mixed"
    return precision
