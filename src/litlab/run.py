"""The task wrapper: build everything from the config, fit, test, report, and always clean up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError, checkpoint, tracking
from litlab.config import check_targets, to_plain
from litlab.manifest import Manifest
from litlab.report import print_summary

log = logging.getLogger(__name__)


def _cheap_cuda_check() -> None:
    """Undo Lightning's NVML-based CUDA check where there is no CUDA device to protect.

    Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 so that asking for GPUs never
    initializes CUDA before a fork. With a CUDA build of torch and no driver, that makes every
    ``torch.cuda.is_available()`` try to load NVML again (~40 us), and torch's optimizers ask on
    every step. With no device there is no CUDA to initialize, so the plain check is safe.
    """
    import os

    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


_cheap_cuda_check()


def _build(node: DictConfig | None, what: str, **kwargs):
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        raise LitlabError(f"Could not build {what}: {err}") from err


def build_all(
    cfg: DictConfig, plain: dict, manifest: Manifest | None = None, extra_callbacks: Sequence = ()
):
    """The datamodule, model and trainer a config describes (plus callbacks given in code)."""
    datamodule = _build(cfg.data, "data")
    model = _build(cfg.model, "model")
    callbacks = [_build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks.append(checkpoint.SaveRunConfig(plain))
    callbacks.extend(extra_callbacks)
    loggers = [
        _build_logger(k, c, plain, manifest) for k, c in (cfg.get("logger") or {}).items() if c
    ]
    trainer = _build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def _build_logger(key: str, node: DictConfig, plain: dict, manifest: Manifest | None):
    if node.get("_target_") != "lightning.pytorch.loggers.WandbLogger":
        return _build(node, f"logger.{key}")
    # A resumed run continues its wandb run: same id, read back from the run dir's manifest.
    resumed = manifest.previous_wandb if manifest and plain.get("ckpt_path") else None
    extra = tracking.wandb_init_kwargs(plain["logger"][key], resumed)
    if manifest and "id" in extra:
        manifest.update(wandb={"id": extra["id"], "mode": plain["logger"][key].get("mode")})
    logger = _build(node, f"logger.{key}", **extra)
    # Lightning always passes anonymous=None, which makes wandb print a deprecation warning.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


@rank_zero_only
def _save_config(plain: dict, output_dir: str) -> None:
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(plain), Path(output_dir) / "config.yaml")


def _resume_from(cfg: DictConfig, plain: dict) -> str | None:
    if not cfg.get("ckpt_path"):
        return None
    path = checkpoint.find_checkpoint(cfg.ckpt_path, prefer="last")
    checkpoint.check_same_task(checkpoint.run_config(path), plain, path)
    return str(path)


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


def train(cfg: DictConfig) -> float | None:
    """``litlab-train``'s work: fit and test; returns ``cfg.monitor.metric`` for sweeps."""
    return fit_and_test(cfg).objective


def fit_and_test(cfg: DictConfig, callbacks: Sequence = ()) -> Run:
    """Check the config, build everything, fit, test the best checkpoint, print a summary.

    ``callbacks`` join the configured ones: sweeps add Optuna's pruning callback this way.
    ``run.json`` in the run dir says how it went, even when it fails before anything is built.
    """
    with Manifest(cfg.paths.output_dir) as manifest:
        return _fit_and_test(cfg, manifest, callbacks)


def _fit_and_test(cfg: DictConfig, manifest: Manifest, callbacks: Sequence) -> Run:
    check_targets(cfg)
    plain = tracking.redact(to_plain(cfg))  # what is saved and logged: no secret in it
    manifest.update(name=cfg.name, seed=cfg.seed, config=plain)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    ckpt_path = _resume_from(cfg, plain)
    _save_config(plain, cfg.paths.output_dir)
    datamodule, model, trainer = build_all(cfg, plain, manifest, callbacks)
    info = {
        "overrides": manifest.data["overrides"],
        "git": manifest.data["git"],
        "versions": manifest.data["versions"],
        "hardware": tracking.hardware(trainer),
        "parameters": tracking.parameter_counts(model),
    }
    manifest.update(hardware=info["hardware"], parameters=info["parameters"])
    status = "failed"
    metrics: dict[str, float] = {}
    try:
        for lg in trainer.loggers:
            lg.log_hyperparams(plain)
        tracking.log_run_info(trainer.loggers, info)
        if cfg.get("train", True):
            _fit(trainer, model, datamodule, ckpt_path)
            metrics.update(_metrics(trainer))
            if hasattr(model, "summary"):
                fitted = {f"fit/{k}": v for k, v in model.summary().items()}
                metrics.update(fitted)
                for lg in trainer.loggers:
                    lg.log_metrics(fitted, step=trainer.global_step)
        if cfg.get("test", True):
            best = _best_checkpoint(trainer)
            weights = best or (None if cfg.get("train", True) else ckpt_path)
            trainer.test(model, datamodule, ckpt_path=weights, weights_only=True, verbose=False)
            metrics.update(_metrics(trainer))
        print_summary(cfg, metrics, trainer)
        status = "success"
        return Run(cfg, datamodule, model, trainer, metrics)
    finally:
        for lg in trainer.loggers:  # loggers are closed even when the run fails
            lg.finalize(status)
        wandb_run = tracking.finish_wandb(trainer.loggers, metrics, failed=status != "success")
        manifest.interrupted = trainer.interrupted
        manifest.update(
            metrics=metrics,
            checkpoints=_checkpoints(trainer),
            figures=sorted(str(p) for p in Path(cfg.paths.output_dir).glob("figures/*.png")),
            loggers=_logger_dirs(trainer),
            **({"wandb": wandb_run} if wandb_run else {}),
        )


def _checkpoints(trainer: L.Trainer) -> dict[str, str | None]:
    cb = trainer.checkpoint_callback
    return {
        "best": getattr(cb, "best_model_path", None) or None,
        "last": getattr(cb, "last_model_path", None) or None,
    }


def _logger_dirs(trainer: L.Trainer) -> dict[str, str]:
    return {
        type(lg).__name__: str(Path(lg.log_dir))
        for lg in trainer.loggers
        if getattr(lg, "log_dir", None) and not isinstance(lg, WandbLogger)
    }


def _fit(trainer, model, datamodule, ckpt_path) -> None:
    try:
        trainer.fit(model, datamodule, ckpt_path=ckpt_path, weights_only=True)
    except RuntimeError as err:
        if "state_dict" in str(err) and ckpt_path:
            first = str(err).splitlines()[0]
            raise LitlabError(
                f"{ckpt_path} does not fit this model ({first}). Resume with the model settings "
                "of the run that wrote it."
            ) from err
        raise


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    cb = trainer.checkpoint_callback
    return getattr(cb, "best_model_path", None) or None


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data and model from the config stored in the checkpoint, then test them."""
    path = checkpoint.find_checkpoint(cfg.ckpt_path, prefer="best")
    saved = OmegaConf.create(checkpoint.run_config(path))
    if cfg.get("data_dir") and "data_dir" in saved.data:
        saved.data.data_dir = cfg.data_dir
    if cfg.get("batch_size"):
        saved.data.eval_batch_size = cfg.batch_size
    datamodule = _build(saved.data, "data")
    model = _build(saved.model, "model")
    trainer = _build(cfg.trainer, "trainer", logger=False, callbacks=[])
    trainer.test(model, datamodule, ckpt_path=str(path), weights_only=True, verbose=False)
    metrics = _metrics(trainer)
    print_summary(OmegaConf.merge(saved, {"paths": {"output_dir": str(path)}}), metrics, trainer)
    return metrics
