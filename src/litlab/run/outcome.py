"""What a fit or a test left behind: its final metrics (checked finite), its checkpoints, its
loggers' folders; and closing the loggers. Shared by ``fit`` and ``evaluate``."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from litlab import LitlabError
from litlab.run.callbacks import NONFINITE_ADVICE
from litlab.tracking import wandb_run


def metrics(trainer: L.Trainer) -> dict[str, float]:
    """Every scalar the last fit or test logged, as plain floats."""
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def check_finite(values: dict[str, float], stage: str) -> None:
    """Stop a run whose ``stage`` metrics (``"val/"``, ``"test/"``) came out NaN or infinite."""
    bad = sorted(k for k, v in values.items() if k.startswith(stage) and not math.isfinite(v))
    if bad:
        raise LitlabError(f"{', '.join(bad)} came out NaN or infinite. {NONFINITE_ADVICE}")


def checkpoints(trainer: L.Trainer) -> dict[str, str | None]:
    """The paths of the best checkpoint and of last.ckpt (each written by its own callback:
    configs/callbacks/model_checkpoint.yaml)."""
    paths = [getattr(cb, "best_model_path", "") for cb in trainer.checkpoint_callbacks]
    return {
        "best": getattr(trainer.checkpoint_callback, "best_model_path", None) or None,
        "last": next((p for p in paths if Path(p).name == "last.ckpt"), None),
    }


def logger_dirs(loggers: Sequence) -> dict[str, str]:
    """``{"CSVLogger": <its folder>, ...}``; wandb's run says where it is itself."""
    return {
        type(lg).__name__: str(Path(lg.log_dir))
        for lg in loggers
        if getattr(lg, "log_dir", None) and not isinstance(lg, WandbLogger)
    }


def pruned(err: BaseException) -> bool:
    """Whether ``err`` is Optuna's ``TrialPruned``: a sweep's pruner stopped the run on purpose
    (its callback raises it inside ``trainer.fit``), which is no failure. optuna is not imported
    for this: where it is not loaded, nothing raised its exception."""
    optuna = sys.modules.get("optuna")
    return optuna is not None and isinstance(err, optuna.TrialPruned)


def close_loggers(loggers: Sequence, status: str, final: dict[str, float]) -> dict | None:
    """Every logger finalized, and wandb's run finished with the ``final`` metrics in its
    summary and the run's ``status`` (``success``, ``failed`` or ``pruned``); returns where that
    wandb run is (None without one)."""
    for lg in loggers:  # Lightning's loggers know success and failed (MLflow refuses others)
        lg.finalize("success" if status == "success" else "failed")
    return wandb_run.finish(loggers, final, status)
