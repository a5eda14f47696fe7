"""The task wrapper: build everything from the config, fit, test, report, and always clean up."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError, checkpoint, first_line, resume, tracking
from litlab import manifest as manifest_file
from litlab.atomic import write_atomic
from litlab.checks import check_nodes, check_values, seed_for_numpy
from litlab.cli import Interrupted
from litlab.config import check_targets, to_plain
from litlab.manifest import Manifest
from litlab.models.base import NONFINITE_ADVICE
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
        cause = err.__cause__ or err
        raise LitlabError(f"Could not build {what}: {first_line(cause)}") from err


def build_all(
    cfg: DictConfig,
    plain: dict,
    previous_wandb: dict | None = None,
    extra_callbacks: Sequence = (),
    source: dict | None = None,
):
    """The datamodule, model and trainer a config describes (plus callbacks given in code).

    Nothing is written yet: loggers and checkpoints create their files once the run starts.
    """
    datamodule = _build(cfg.data, "data")
    model = _build(cfg.model, "model")
    callbacks = [_build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks.append(checkpoint.SaveRunConfig(plain, source))
    callbacks.extend(extra_callbacks)
    loggers = [
        _build_logger(k, c, plain, previous_wandb)
        for k, c in (cfg.get("logger") or {}).items()
        if c
    ]
    trainer = _build(
        cfg.trainer,
        "trainer",
        callbacks=callbacks,
        logger=loggers or False,
        plugins=[checkpoint.AtomicCheckpointIO()],
    )
    return datamodule, model, trainer


def _build_logger(key: str, node: DictConfig, plain: dict, previous_wandb: dict | None):
    if node.get("_target_") != "lightning.pytorch.loggers.WandbLogger":
        return _build(node, f"logger.{key}")
    # A resumed run continues its wandb run: same id, read back from the run dir's manifest.
    extra = tracking.wandb_init_kwargs(plain["logger"][key], previous_wandb)
    logger = _build(node, f"logger.{key}", **extra)
    # Lightning always passes anonymous=None, which makes wandb print a deprecation warning.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _wandb_ids(trainer: L.Trainer) -> dict | None:
    for lg in tracking.wandb_loggers(trainer.loggers):
        run_id = getattr(lg, "_wandb_init", {}).get("id")
        if run_id:
            return {"id": run_id, "mode": lg._wandb_init.get("mode")}
    return None


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def _check_finite(metrics: dict[str, float], stage: str) -> None:
    bad = sorted(k for k, v in metrics.items() if k.startswith(stage) and not math.isfinite(v))
    if bad:
        raise LitlabError(f"{', '.join(bad)} came out NaN or infinite. {NONFINITE_ADVICE}")


@rank_zero_only
def _save_config(plain: dict, output_dir: str) -> None:
    text = OmegaConf.to_yaml(OmegaConf.create(plain))
    write_atomic(Path(output_dir) / "config.yaml", lambda f: f.write(text.encode()))


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
    plain: dict
    resumed: checkpoint.Found | None
    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer


def plan(cfg: DictConfig, callbacks: Sequence = ()) -> Plan:
    """Every check a run can fail before it starts, then everything built. Writes nothing, so a
    refused run leaves no trace (and a refused resume leaves the run dir it names as it was)."""
    check_config(cfg)
    found = None
    if cfg.get("ckpt_path"):
        train = cfg.get("train", True)
        found = checkpoint.open_checkpoint(cfg.ckpt_path, prefer="last" if train else "best")
        cfg = resume.resumed_config(cfg, found, tracking.overrides())
        check_config(cfg)
    plain = tracking.redact(to_plain(cfg))  # what is saved and logged: no secret in it
    source = tracking.redact(OmegaConf.to_container(cfg, resolve=False))
    previous = manifest_file.read(cfg.paths.output_dir).get("wandb") if found else None
    datamodule, model, trainer = build_all(cfg, plain, previous, callbacks, source)
    if found:
        _check_weights(model, found)
    return Plan(cfg, plain, found, datamodule, model, trainer)


def check_config(cfg: DictConfig) -> None:
    """Types (against each ``_target_``'s signature) and values (``litlab.checks``)."""
    check_values(cfg)
    check_targets(cfg)


def train(cfg: DictConfig) -> float | None:
    """``litlab-train``'s work: fit and test; returns ``cfg.monitor.metric`` for sweeps."""
    return fit_and_test(cfg).objective


def fit_and_test(cfg: DictConfig, callbacks: Sequence = ()) -> Run:
    """Check the config, build everything, fit, test the best checkpoint, print a summary.

    ``callbacks`` join the configured ones: sweeps add Optuna's pruning callback this way.
    ``run.json`` in the run dir says how it went, from the moment the run passed its checks.
    """
    p = plan(cfg, callbacks)
    run_dir = p.cfg.paths.output_dir
    manifest = Manifest(run_dir, resumed=p.resumed is not None)
    try:
        with _lock(run_dir), manifest:
            return _fit_and_test(p, manifest)
    except (KeyboardInterrupt, SystemExit) as err:
        if isinstance(err, KeyboardInterrupt) or manifest.interrupted:
            raise Interrupted(run_dir) from err
        raise


def _lock(run_dir: str):
    return resume.run_lock(run_dir) if rank_zero_only.rank == 0 else nullcontext()


def _fit_and_test(p: Plan, manifest: Manifest) -> Run:
    cfg, trainer, model, datamodule = p.cfg, p.trainer, p.model, p.datamodule
    manifest.update(
        name=cfg.name,
        seed=cfg.seed,
        config=p.plain,
        resumed_from=str(p.resumed.path) if p.resumed else None,
        **({"wandb": w} if (w := _wandb_ids(trainer)) else {}),
    )
    L.seed_everything(seed_for_numpy(cfg.seed), workers=True, verbose=False)
    _save_config(p.plain, cfg.paths.output_dir)
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
    ckpts: dict[str, str | None] = {}
    ckpt_path = str(p.resumed.path) if p.resumed else None
    try:
        for lg in trainer.loggers:
            lg.log_hyperparams(p.plain)
        tracking.log_run_info(trainer.loggers, info)
        if cfg.get("train", True):
            trainer.fit(model, datamodule, ckpt_path=ckpt_path, weights_only=True)
            # Before testing: testing a checkpoint restores the callback's state from that file.
            ckpts = _checkpoints(trainer)
            metrics.update(_metrics(trainer))
            _check_finite(metrics, "val/")
            if hasattr(model, "summary"):
                fitted = {f"fit/{k}": v for k, v in model.summary().items()}
                metrics.update(fitted)
                for lg in trainer.loggers:
                    lg.log_metrics(fitted, step=trainer.global_step)
        if cfg.get("test", True):
            best = ckpts.get("best")
            weights = best or (None if cfg.get("train", True) else ckpt_path)
            trainer.test(model, datamodule, ckpt_path=weights, weights_only=True, verbose=False)
            metrics.update(_metrics(trainer))
            _check_finite(metrics, "test/")
        print_summary(
            f"litlab · {cfg.name} · seed {cfg.seed}",
            metrics,
            {"run dir": cfg.paths.output_dir, "best checkpoint": ckpts.get("best")},
        )
        status = "success"
        return Run(cfg, datamodule, model, trainer, metrics)
    finally:
        for lg in trainer.loggers:  # loggers are closed even when the run fails
            lg.finalize(status)
        wandb_run = tracking.finish_wandb(trainer.loggers, metrics, failed=status != "success")
        manifest.interrupted = trainer.interrupted
        manifest.update(
            metrics=metrics,
            checkpoints=ckpts or _checkpoints(trainer),
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


def _check_weights(model: L.LightningModule, found: checkpoint.Found) -> None:
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


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Rebuild data and model from the config stored in the checkpoint, then test them, at the
    precision the run trained with unless ``trainer.precision`` says otherwise."""
    if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
        raise LitlabError(
            "litlab-eval needs ckpt_path=<checkpoint file or run dir>, e.g. "
            "litlab-eval ckpt_path=logs/mnist/runs/<time>."
        )
    found = checkpoint.open_checkpoint(cfg.ckpt_path, prefer="best")
    saved = OmegaConf.create(found.config)
    if cfg.get("data_dir") and "data_dir" in saved.data:
        saved.data.data_dir = cfg.data_dir
    if cfg.get("batch_size") is not None:
        saved.data.eval_batch_size = cfg.batch_size
    check_nodes(OmegaConf.create({"data": saved.data, "trainer": to_plain(cfg.trainer)}))
    datamodule = _build(saved.data, "data")
    model = _build(saved.model, "model")
    precision = cfg.trainer.get("precision") or _trained_precision(saved)
    trainer = _build(cfg.trainer, "trainer", logger=False, callbacks=[], precision=precision)
    trainer.test(model, datamodule, ckpt_path=str(found.path), weights_only=True, verbose=False)
    metrics = _metrics(trainer)
    title = f"litlab-eval · {saved.name} · seed {saved.seed}"
    print_summary(title, metrics, {"checkpoint": str(found.path)})
    return metrics


def _trained_precision(saved: DictConfig) -> str:
    """The run's own precision; fp16 AMP exists on GPUs only, so a CPU runs bf16 instead."""
    import torch

    precision = str(OmegaConf.select(saved, "trainer.precision", default=None) or "32-true")
    if precision.startswith("16") and not torch.cuda.is_available():
        return "bf16-mixed"
    return precision
