"""What a run is made of, instantiated from its config: data, model, callbacks, loggers, trainer.

Nothing is written here: loggers and checkpoints create their files once the run starts.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from litlab import LitlabError, first_line
from litlab.run.checkpoints import SaveRunConfig
from litlab.tracking import wandb_run


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


def build(node: DictConfig | None, what: str, **kwargs):
    """``node`` instantiated; a failure is one line naming the config group (``what``)."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except Exception as err:
        # Hydra 1.3 wraps what a target raises in InstantiationException; 1.4 lets it through.
        wrapped = isinstance(err, InstantiationException) and err.__cause__
        raise LitlabError(f"Could not build {what}: {first_line(wrapped or err)}") from err


def build_all(
    cfg: DictConfig,
    plain: dict,
    previous_wandb: dict | None = None,
    extra_callbacks: Sequence = (),
    source: dict | None = None,
) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """The datamodule, model and trainer a config describes, plus the callbacks added in code:
    ``extra_callbacks`` and ``SaveRunConfig``, which stores ``plain`` (the resolved, redacted
    config) and ``source`` (the same before resolving) in every checkpoint; ``previous_wandb``
    is the wandb run a resumed run continues."""
    datamodule = build(cfg.data, "data")
    model = build(cfg.model, "model")
    callbacks = [build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks.append(SaveRunConfig(plain, source))
    callbacks.extend(extra_callbacks)
    loggers = [
        build_logger(k, c, plain, previous_wandb) for k, c in (cfg.get("logger") or {}).items() if c
    ]
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def build_logger(
    key: str, node: DictConfig, plain: dict, previous_wandb: dict | None, **wandb_kwargs
):
    """``logger.<key>``; a wandb one gets its run id (``previous_wandb``'s when resuming)."""
    if not wandb_run.is_wandb(node):
        return build(node, f"logger.{key}")
    extra = {**wandb_run.init_kwargs(plain["logger"][key], previous_wandb), **wandb_kwargs}
    return wandb_run.quiet(build(node, f"logger.{key}", **extra))


def build_saved_data(saved: DictConfig, data_dir: str | None = None) -> L.LightningDataModule:
    """The datamodule of a trained run's config (from its checkpoint); ``data_dir`` says where
    its data lives now, for data that moved since it trained."""
    if data_dir and "data_dir" in saved.data:
        saved.data.data_dir = str(data_dir)
    return build(saved.data, "data")
