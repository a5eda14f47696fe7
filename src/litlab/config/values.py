"""Values that can only be wrong, refused before any work starts, each in one line.

Type hints catch a string where a number belongs (``config.check_targets``); these rules catch
numbers no run can use: a batch of 0 images, a negative or infinite learning rate, a seed numpy
cannot take. Rules go by key name wherever the key sits in a ``_target_`` node, so a new task's
``batch_size`` or ``lr`` is checked without a new rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab import LitlabError

SEED_LIMIT = 2**32 - 1  # numpy's largest seed; negatives map onto the same range


@dataclass(frozen=True)
class Rule:
    """A number in ``[low, high]`` (ends excluded where ``open_*``), or one of ``also``."""

    integer: bool = False
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False
    null: bool = False
    also: tuple = ()
    fraction: bool = False  # an int (a count) or a float in [0, 1] (a share), like limit_*

    def allows(self, v: Any) -> bool:
        if v is None:
            return self.null
        if isinstance(v, bool) or not isinstance(v, int | float):
            return False
        if v in self.also:
            return True
        if self.fraction and isinstance(v, float):
            return 0.0 <= v <= 1.0
        if (self.integer or self.fraction) and not isinstance(v, int):
            return False
        lo_ok = v > self.low if self.open_low else v >= self.low
        hi_ok = v < self.high if self.open_high else v <= self.high
        return math.isfinite(v) and lo_ok and hi_ok

    def describe(self) -> str:
        if self.fraction:
            text = f"an integer >= {self.low:g} (batches) or a fraction in [0, 1]"
        else:
            kind = "an integer" if self.integer else "a finite number"
            ends = []
            if self.low > -math.inf:
                ends.append(f"{'>' if self.open_low else '>='} {self.low:g}")
            if self.high < math.inf:
                ends.append(f"{'<' if self.open_high else '<='} {self.high:g}")
            text = f"{kind} {' and '.join(ends)}".strip()
        extras = [repr(a) for a in self.also] + (["null"] if self.null else [])
        return text + (f", or {' or '.join(extras)}" if extras else "")


def _int(low: float = 1, **kw) -> Rule:
    return Rule(integer=True, low=low, **kw)


COUNT = _int(1)
FINITE = Rule()
POSITIVE = Rule(low=0, open_low=True)
NON_NEGATIVE = Rule(low=0)
SHARE = Rule(low=0, high=1, open_high=True)  # dropout, label smoothing

RULES: dict[str, Rule] = {
    # data
    "batch_size": COUNT,
    "eval_batch_size": _int(1, null=True),
    "val_size": COUNT,
    "num_samples": COUNT,
    "num_val": COUNT,
    "num_test": COUNT,
    "std": POSITIVE,
    "noise_std": NON_NEGATIVE,
    "low": FINITE,
    "high": FINITE,
    "slope": FINITE,
    "intercept": FINITE,
    "centers": FINITE,
    "mean": FINITE,  # data.normalize (ImageDataModule checks std > 0 itself)
    # models
    "degree": COUNT,
    "in_features": COUNT,
    "in_channels": COUNT,
    "hidden_size": _int(1, null=True),
    "num_classes": _int(2),
    "channels": COUNT,
    "stem": _int(0),
    "image_size": _int(5),  # two unpadded 3x3 convolutions need 5 pixels
    "dropout": SHARE,
    "label_smoothing": SHARE,
    "lr": POSITIVE,
    "max_lr": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "pct_start": Rule(low=0, high=1, open_low=True, open_high=True),
    # trainer
    "max_epochs": _int(1, null=True, also=(-1,)),
    "min_epochs": _int(0, null=True),
    "max_steps": _int(1, also=(-1,)),
    "devices": _int(1, also=(-1,)),  # names ("auto", "0,1") and lists: Lightning checks them
    "num_nodes": COUNT,
    "accumulate_grad_batches": COUNT,
    "log_every_n_steps": COUNT,
    "check_val_every_n_epoch": _int(1, null=True),
    "num_sanity_val_steps": _int(0, also=(-1,)),
    "limit_train_batches": Rule(low=0, fraction=True, null=True),
    "limit_val_batches": Rule(low=0, fraction=True, null=True),
    "limit_test_batches": Rule(low=0, fraction=True, null=True),
    "overfit_batches": Rule(low=0, fraction=True),
    "val_check_interval": Rule(low=0, high=1, open_low=True, null=True),
    "gradient_clip_val": Rule(low=0, null=True),
    # callbacks
    "patience": _int(0),
    "min_delta": FINITE,
    "save_top_k": _int(-1),
    "refresh_rate": _int(0),
    "max_depth": _int(-1),
    "dpi": COUNT,
}


def _allowed(rule: Rule, value: Any) -> bool:
    if isinstance(value, ListConfig | list | tuple):  # channels, centers: every item
        return all(_allowed(rule, v) for v in value)
    return rule.allows(value)


def _check_node(node: DictConfig, path: str) -> None:
    for key in node:
        rule = RULES.get(str(key))
        if rule is None or OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if key == "devices" and isinstance(value, str | ListConfig):
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value)
        if key == "val_check_interval" and isinstance(value, int) and not isinstance(value, bool):
            rule = COUNT  # an int counts batches; a float is a share of the epoch
        if not _allowed(rule, value):
            raise LitlabError(f"{path}.{key}={value!r} is not allowed: {rule.describe()}.")


def check_nodes(cfg: Any, path: str = "") -> None:
    """The value rules, for every ``_target_`` node in ``cfg``."""
    if isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg):
            check_nodes(item, f"{path}[{i}]")
    elif isinstance(cfg, DictConfig):
        if "_target_" in cfg:
            _check_node(cfg, path or "<root>")
        for key in cfg:
            if not OmegaConf.is_missing(cfg, key):
                check_nodes(cfg[key], f"{path}.{key}" if path else str(key))


def check_values(cfg: DictConfig) -> None:
    """Every number in range, and the settings that only make sense together; else one line."""
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or abs(seed) > SEED_LIMIT:
        raise LitlabError(
            f"seed={seed!r} is not allowed: any integer from -{SEED_LIMIT} to {SEED_LIMIT}."
        )
    check_nodes(cfg)
    _check_run(cfg)


def _check_run(cfg: DictConfig) -> None:
    train = cfg.get("train", True)
    if not train and cfg.get("test", True) and not cfg.get("ckpt_path"):
        raise LitlabError(
            "train=false tests a trained model: add ckpt_path=<checkpoint or run dir>."
        )
    trainer = cfg.get("trainer") or {}
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
