"""What a run is made of, instantiated from its config: data, model, callbacks, loggers, trainer.

Nothing is written here: loggers and checkpoints create their files once the run starts.
"""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Sequence

import hydra.utils
import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError, first_line
from litlab.config.project import project_trusted
from litlab.run.checkpoints import Checkpoint, SaveRunConfig
from litlab.run.resume import ContinueFromConfig
from litlab.tracking import wandb_run

# Hydra 1.4 asks instantiate which targets a config may call (1.5 will refuse the others);
# litlab answers itself: any target of a config the user composed (their files, their command
# line), and of a config read back from a checkpoint only what ``saved_config`` lets through.
# Hydra 1.3 has no such argument (None here) and calls whatever a config names.
_ANY_TARGET = getattr(hydra.utils, "UNSAFE_DISABLE_EXECUTION_CHECKS", None)
# A checkpoint may come from anywhere, and building its config runs the code it names: litlab
# builds data and models from one only with targets defined in these packages, or in those the
# user names in $LITLAB_TRUSTED_PACKAGES. Not all of torch (torch.hub.load runs downloaded
# code), nor all of litlab (litlab.files writes files).
CHECKPOINT_PACKAGES = ("litlab.data", "litlab.models", "torch.optim", "torch.nn", "torchmetrics")
TRUSTED_ENV = "LITLAB_TRUSTED_PACKAGES"


def _cheap_cuda_check() -> None:
    """Undo Lightning's NVML-based CUDA check where there is no CUDA device to protect.

    Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 so that asking for GPUs never
    initializes CUDA before a fork. With a CUDA build of torch and no driver, that makes every
    ``torch.cuda.is_available()`` try to load NVML again (~40 us), and torch's optimizers ask on
    every step. With no device there is no CUDA to initialize, so the plain check is safe.
    """
    import torch

    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and torch.cuda.device_count() == 0:
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


_cheap_cuda_check()


def build(node: DictConfig | None, what: str, **kwargs):
    """``node`` instantiated, calling whatever targets it names (a checkpoint's config is
    checked by ``saved_config`` first); a failure is one line naming the config group (``what``)."""
    if _ANY_TARGET is not None:
        kwargs["_execution_whitelist_"] = _ANY_TARGET
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except Exception as err:
        # Hydra 1.3 wraps what a target raises in InstantiationException; 1.4 lets it through.
        wrapped = isinstance(err, InstantiationException) and err.__cause__
        raise LitlabError(f"Could not build {what}: {first_line(wrapped or err)}") from err


def targets(node) -> list[str]:
    """Every ``_target_`` a config (or plain dict) names, nested ones included."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if isinstance(plain, dict):
        own = [plain["_target_"]] if isinstance(plain.get("_target_"), str) else []
        return own + [t for value in plain.values() for t in targets(value)]
    return [t for value in plain for t in targets(value)] if isinstance(plain, list) else []


def saved_config(checkpoint: Checkpoint) -> DictConfig:
    """The run config stored in ``checkpoint``, refused in one line unless every target of its
    data and model is defined in ``CHECKPOINT_PACKAGES``, a package in $LITLAB_TRUSTED_PACKAGES
    (comma-separated) or one the project trusts (``[tool.litlab] trusted``). Where a target is
    defined counts, not only its name: ``litlab.files.os.system`` names ``os.system`` through an
    import."""
    saved = OmegaConf.create(checkpoint.config)
    named = [p.strip() for p in os.environ.get(TRUSTED_ENV, "").split(",") if p.strip()]
    trusted = (*CHECKPOINT_PACKAGES, *named, *project_trusted())
    for key in ("data", "model"):
        for target in targets(saved.get(key)):
            if not (_within(target, trusted) and _within(_defined_in(target), trusted)):
                raise LitlabError(
                    f"{checkpoint.path}: its {key} names {target!r}, and litlab builds from a "
                    f"checkpoint only what {', '.join(trusted)} define. If you trust this file, "
                    f"name the package in {TRUSTED_ENV} (comma-separated)."
                )
    return saved


def _within(name: str, packages: Sequence[str]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def _defined_in(target: str) -> str:
    try:
        found = pkgutil.resolve_name(target)
    except Exception:
        return target  # not found: building it says so in one line
    return getattr(found, "__module__", None) or ""


def build_all(
    cfg: DictConfig,
    plain: dict,
    previous_wandb: dict | None = None,
    extra_callbacks: Sequence = (),
    source: dict | None = None,
) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """The datamodule, model and trainer a config describes, plus the callbacks added in code:
    ``extra_callbacks``; ``SaveRunConfig``, which stores ``plain`` (the resolved, redacted
    config) and ``source`` (the same before resolving) in every checkpoint; ``ContinueFromConfig``
    (a resume applies what its config changed since the checkpoint); and with litlab's
    ``WandbLogger``, ``SentByEpochEnd``. ``previous_wandb`` is the wandb run a resumed run
    continues."""
    datamodule = build(cfg.data, "data")
    model = build(cfg.model, "model")
    callbacks = [build(c, f"callbacks.{k}") for k, c in (cfg.get("callbacks") or {}).items() if c]
    callbacks.append(SaveRunConfig(plain, source))
    callbacks.append(ContinueFromConfig())  # a resume applies what its config changed
    callbacks.extend(extra_callbacks)
    loggers = [
        build_logger(k, c, plain, previous_wandb, packages_listed=True)
        for k, c in (cfg.get("logger") or {}).items()
        if c
    ]
    if any(isinstance(lg, wandb_run.WandbLogger) for lg in loggers):
        callbacks.append(wandb_run.SentByEpochEnd())  # its records sent by each epoch's end
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    return datamodule, model, trainer


def build_logger(
    key: str,
    node: DictConfig,
    plain: dict,
    previous_wandb: dict | None,
    packages_listed: bool = False,
    **wandb_kwargs,
):
    """``logger.<key>``; a wandb one gets its run id (``previous_wandb``'s when resuming), and
    ``packages_listed`` says its run's requirements.txt is litlab's to write (``init_kwargs``)."""
    if not wandb_run.is_wandb(node):
        return build(node, f"logger.{key}")
    node_cfg = plain["logger"][key]
    extra = {**wandb_run.init_kwargs(node_cfg, previous_wandb, packages_listed), **wandb_kwargs}
    return wandb_run.quiet(build(node, f"logger.{key}", **extra))


def build_saved_data(saved: DictConfig, data_dir: str | None = None) -> L.LightningDataModule:
    """The datamodule of a trained run's config (from its checkpoint); ``data_dir`` says where
    its data lives now, for data that moved since it trained."""
    if data_dir and "data_dir" in saved.data:
        saved.data.data_dir = str(data_dir)
    return build(saved.data, "data")
