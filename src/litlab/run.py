"""The task wrapper: build everything from the config, fit, test, report, and always clean up."""

from __future__ import annotations

import logging
import math
import sys
import warnings
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


def _build_logger(
    key: str, node: DictConfig, plain: dict, previous_wandb: dict | None, **wandb_kwargs
):
    if not _is_wandb(node):
        return _build(node, f"logger.{key}")
    # A resumed run continues its wandb run: same id, read back from the run dir's manifest.
    extra = {**tracking.wandb_init_kwargs(plain["logger"][key], previous_wandb), **wandb_kwargs}
    logger = _build(node, f"logger.{key}", **extra)
    # Lightning always passes anonymous=None, which makes wandb print a deprecation warning.
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)
    return logger


def _is_wandb(node: DictConfig) -> bool:
    return node.get("_target_") == "lightning.pytorch.loggers.WandbLogger"


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
            loggers=_logger_dirs(trainer.loggers),
            **({"wandb": wandb_run} if wandb_run else {}),
        )


def _checkpoints(trainer: L.Trainer) -> dict[str, str | None]:
    cb = trainer.checkpoint_callback
    return {
        "best": getattr(cb, "best_model_path", None) or None,
        "last": getattr(cb, "last_model_path", None) or None,
    }


def _logger_dirs(loggers: Sequence) -> dict[str, str]:
    return {
        type(lg).__name__: str(Path(lg.log_dir))
        for lg in loggers
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


# --- litlab-eval -------------------------------------------------------------------------------

EVAL_FILE = "eval.json"


class EvalRecord(Manifest):
    """``eval.json`` in the evaluation's own run dir: run.json's provenance and status (command,
    overrides, git, versions, host; ``running`` -> ``finished``/``failed``/``interrupted``), with
    a failure's error on one line. Nothing is written before ``__enter__``."""

    def __init__(self, run_dir: str | Path):
        super().__init__(run_dir)
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
    found: checkpoint.Found
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
    p = plan_eval(cfg)
    with EvalRecord(cfg.paths.output_dir) as record:
        return _evaluate(p, record)


def plan_eval(cfg: DictConfig) -> EvalPlan:
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
    if cfg.get("logger"):
        check_targets(cfg.logger, "logger")
    datamodule = _build(saved.data, "data")
    if rank_zero_only.rank == 0:
        datamodule.prepare_data()  # data that is not there is refused before anything is written
    model = _build(saved.model, "model")
    precision = cfg.trainer.get("precision") or _trained_precision(saved)
    trainer = _build(cfg.trainer, "trainer", logger=False, callbacks=[], precision=precision)
    plain = tracking.redact(to_plain(cfg))
    trained = manifest_file.read(_trained_run_dir(found))
    loggers, resumes = _eval_loggers(cfg, plain, saved, trained.get("wandb"))
    return EvalPlan(cfg, plain, found, saved, trained, datamodule, model, trainer, loggers, resumes)


def _trained_run_dir(found: checkpoint.Found) -> Path:
    """``<run dir>/checkpoints/best.ckpt`` -> ``<run dir>``."""
    return found.path.resolve().parent.parent


def _eval_loggers(cfg: DictConfig, plain: dict, saved: DictConfig, trained_wandb: dict | None):
    """The configured loggers; a wandb one continues the trained run's wandb run when it has
    one (same id and project: it is "resumed"; offline that is a new local part of it, which
    ``wandb sync`` adds to the same run)."""
    loggers, resumes = [], False
    for key, node in (cfg.get("logger") or {}).items():
        if not node:
            continue
        if _is_wandb(node) and trained_wandb and trained_wandb.get("id"):
            resume = _wandb_resume_kwargs(trained_wandb, node.get("mode"), saved)
            loggers.append(_build_logger(key, node, plain, trained_wandb, **resume))
            resumes = True
        else:
            loggers.append(_build_logger(key, node, plain, None))
    return loggers, resumes


def _wandb_resume_kwargs(trained: dict, mode: str | None, saved: DictConfig) -> dict:
    kwargs = {
        "project": trained.get("project"),
        "tags": list(saved.get("tags") or []) or None,  # None: the run keeps its own tags
        # Online, a run the server does not have (never synced, or another entity's) fails
        # here and falls back to a new run; offline there is nothing to check.
        "resume": "allow" if tracking.is_offline(mode) else "must",
    }
    url = trained.get("url") or ""  # https://wandb.ai/<entity>/<project>/runs/<id>
    parts = url.split("/")
    if len(parts) >= 7 and parts[-2] == "runs":
        kwargs["entity"] = parts[-4]
    return kwargs


def _start_eval_wandb(p: EvalPlan) -> bool:
    """Start the wandb run now, so a run that cannot be resumed becomes a new one (said in one
    line) instead of failing the evaluation. Returns whether the trained run was resumed."""
    resumed = p.resumes_wandb
    for i, lg in enumerate(p.loggers):
        if not isinstance(lg, WandbLogger):
            continue
        if not resumed and _rank0():
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
            run_id = lg._wandb_init.get("id")
            print(
                f"litlab: wandb run {run_id} could not be resumed ({first_line(err)}); the "
                "evaluation is logged to a new wandb run.",
                file=sys.stderr,
            )
            key = next(k for k, n in p.cfg.logger.items() if n and _is_wandb(n))
            p.loggers[i] = _build_logger(key, p.cfg.logger[key], p.plain, None)
            p.loggers[i].experiment  # noqa: B018
            resumed = False
    return resumed


def _rank0() -> bool:
    return rank_zero_only.rank == 0


def _evaluate(p: EvalPlan, record: EvalRecord) -> dict[str, float]:
    cfg, trainer, found = p.cfg, p.trainer, p.found
    step = int(found.ckpt.get("global_step") or 0)
    record.update(
        name=cfg.name,
        config=p.plain,
        checkpoint=_checkpoint_info(found),
        trained=_trained_info(p),
        data={"config": tracking.redact(to_plain(p.saved.data)), "split": "test"},
        hardware=tracking.hardware(trainer),
    )
    status = "failed"
    metrics: dict[str, float] = {}
    logged: dict[str, float] = {}
    resumed = False
    try:
        resumed = _start_eval_wandb(p)
        for lg in p.loggers:
            if not (resumed and isinstance(lg, WandbLogger)):  # the trained run keeps its config
                lg.log_hyperparams({**p.plain, "trained": tracking.redact(to_plain(p.saved))})
        with warnings.catch_warnings():
            # Lightning asks for the training callbacks to restore their state; testing needs
            # only the weights, so the hint is noise on every eval.
            warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")
            trainer.test(
                p.model, p.datamodule, ckpt_path=str(found.path), weights_only=True, verbose=False
            )
        metrics = _metrics(trainer)
        _check_finite(metrics, "test/")
        # eval/test/acc next to the training's own test/acc: the same numbers, now recorded.
        logged = {f"eval/{k}": v for k, v in metrics.items()}
        for lg in p.loggers:
            lg.log_metrics(logged, step=step)
        title = f"litlab-eval · {p.saved.name} · seed {p.saved.seed}"
        print_summary(title, metrics, {"checkpoint": str(found.path), "record": str(record.path)})
        status = "success"
        return metrics
    finally:
        for lg in p.loggers:
            lg.finalize(status)
        where = tracking.finish_wandb(p.loggers, logged, failed=status != "success")
        record.interrupted = trainer.interrupted
        record.update(
            metrics=metrics,
            loggers=_logger_dirs(p.loggers),
            **({"wandb": {**where, "resumed": resumed}} if where else {}),
        )


def _checkpoint_info(found: checkpoint.Found) -> dict:
    import hashlib

    digest = hashlib.sha256()
    with open(found.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {
        "path": str(found.path.resolve()),
        "sha256": digest.hexdigest(),  # which weights, even if the file is replaced later
        "epoch": found.ckpt.get("epoch"),
        "global_step": found.ckpt.get("global_step"),
    }


def _trained_info(p: EvalPlan) -> dict:
    """The trained run this checkpoint comes from, and what it measured itself."""
    return {
        "run_dir": str(_trained_run_dir(p.found)) if p.trained else None,
        "name": p.saved.get("name"),
        "seed": p.saved.get("seed"),
        "test_metrics": {
            k: v for k, v in (p.trained.get("metrics") or {}).items() if k.startswith("test/")
        },
        "wandb": p.trained.get("wandb"),
    }


def _trained_precision(saved: DictConfig) -> str:
    """The run's own precision; fp16 AMP exists on GPUs only, so a CPU runs bf16 instead."""
    import torch

    precision = str(OmegaConf.select(saved, "trainer.precision", default=None) or "32-true")
    if precision.startswith("16") and not torch.cuda.is_available():
        return "bf16-mixed"
    return precision
