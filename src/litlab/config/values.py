"""Values that can only be wrong, refused before any work starts, each in one line.

A range sits beside the argument it guards, in its type hint (``batch_size: Count``), which
``config.check_targets`` reads: a new task's ranges come with its code. Here: the shared
ranges, the table for classes litlab does not own, the seed, and settings that only make sense
together.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from omegaconf import DictConfig

from litlab import LitlabError

SEED_LIMIT = 2**32 - 1  # numpy's largest seed; negatives map onto the same range


# The shared ranges of litlab's own arguments, put in their signatures (``batch_size: Count``);
# any other is spelled out there, e.g. ``image_size: Annotated[int, Ge(5)]``.
Count = Annotated[int, Ge(1)]  # sizes, batches, widths: none of them is nothing
Natural = Annotated[int, Ge(0)]  # patience, a stem's channels (0: none)
Classes = Annotated[int, Ge(2)]  # a classifier's classes
Positive = Annotated[float, Gt(0)]  # learning rates, spreads
NonNegative = Annotated[float, Ge(0)]  # noise, weight decay
Share = Annotated[float, Ge(0), Lt(1)]  # dropout, label smoothing


@functools.cache
def _foreign() -> dict[type, dict[str, Any]]:
    """Ranges for the arguments of classes litlab does not own, where their own type hints say
    less (``max_epochs: Optional[int]``). By class: a subclass (``Adam``) takes its base's."""
    import torch
    from lightning.pytorch import Trainer, callbacks

    batches = Natural | Annotated[float, Ge(0), Le(1)]  # a count, or a share of them
    return {
        Trainer: {
            "max_epochs": Count | Literal[-1] | None,
            "min_epochs": Natural | None,
            "max_steps": Count | Literal[-1],
            "devices": Count | Literal[-1] | str | list,  # names, lists: Lightning checks them
            "num_nodes": Count,
            "accumulate_grad_batches": Count,
            "log_every_n_steps": Count,
            "check_val_every_n_epoch": Count | None,
            "num_sanity_val_steps": Natural | Literal[-1],
            "limit_train_batches": batches | None,
            "limit_val_batches": batches | None,
            "limit_test_batches": batches | None,
            "overfit_batches": batches,
            "val_check_interval": Count | Annotated[float, Gt(0), Le(1)] | None,
            "gradient_clip_val": NonNegative | None,
        },
        callbacks.EarlyStopping: {"patience": Natural},
        callbacks.ModelCheckpoint: {"save_top_k": Annotated[int, Ge(-1)]},
        callbacks.TQDMProgressBar: {"refresh_rate": Natural},
        callbacks.ModelSummary: {"max_depth": Annotated[int, Ge(-1)]},
        torch.optim.Optimizer: {"lr": Positive, "weight_decay": NonNegative},
        torch.optim.lr_scheduler.OneCycleLR: {
            "max_lr": Positive,
            "pct_start": Annotated[float, Gt(0), Lt(1)],
        },
    }


def foreign_hints(target: Any) -> dict[str, Any]:
    """The table's ranges for ``target``'s arguments, a subclass's rule over its base's."""
    mro = reversed(target.__mro__) if isinstance(target, type) else ()
    return {key: hint for klass in mro for key, hint in _foreign().get(klass, {}).items()}


def check_values(cfg: DictConfig) -> None:
    """The seed, and the settings that only make sense together; else one line."""
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or abs(seed) > SEED_LIMIT:
        raise LitlabError(
            f"seed={seed!r} is not allowed: any integer from -{SEED_LIMIT} to {SEED_LIMIT}."
        )
    _check_run(cfg)


def _check_run(cfg: DictConfig) -> None:
    train = cfg.get("train", True)
    if not train and cfg.get("test", True) and not cfg.get("ckpt_path"):
        raise LitlabError(
            "train=false tests a trained model: add ckpt_path=<checkpoint or run dir>."
        )
    trainer = cfg.get("trainer") or {}
    if cfg.get("tune") and (not train or "ddp" in str(trainer.get("strategy"))):
        raise LitlabError(
            f"tune={','.join(cfg.tune)} finds values for training on one process: drop it, or "
            "find them first (without train=false or trainer=ddp...), then train with them."
        )
    if not train:
        return
    if trainer.get("max_epochs") == -1 and trainer.get("max_steps", -1) == -1:
        raise LitlabError(
            "trainer.max_epochs=-1 trains forever: set trainer.max_steps too, or max_epochs >= 1."
        )
    _check_validation(cfg, trainer)
    if trainer.get("limit_train_batches") == 0:
        raise LitlabError(
            "trainer.limit_train_batches=0 trains on nothing: use an integer >= 1 (batches) or "
            "a fraction in (0, 1], or train=false with ckpt_path=... to only test."
        )


def seed_for_numpy(seed: int) -> int:
    """Lightning seeds numpy too, which takes 0..2**32-1 only: negative seeds wrap around."""
    return seed % (SEED_LIMIT + 1)


def _check_validation(cfg: DictConfig, trainer: DictConfig) -> None:
    """Checkpoints and early stopping that watch a val/ metric need validation to run."""
    callbacks = cfg.get("callbacks") or {}
    watching = [
        f"callbacks.{name}"
        for name, node in callbacks.items()
        if node and str(node.get("monitor") or "").startswith("val/")
    ]
    if watching and trainer.get("limit_val_batches") == 0:
        raise LitlabError(
            f"trainer.limit_val_batches=0 skips validation, but {' and '.join(watching)} "
            "watch a val/ metric: use limit_val_batches >= 1, or set their monitor to null."
        )
