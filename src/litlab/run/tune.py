"""Lightning's finders, run before training when the config asks (``tune=lr``,
``tune=batch_size``, ``tune=[lr,batch_size]``; configs/tune/). What one finds replaces the
config's value for the whole run: the run trains with it, and config.yaml, run.json (its
``tuned`` record: the config's value and the found one) and every checkpoint say so. The
learning-rate finder's curve is saved as ``figures/lr_find.png``.

A resumed run keeps what it found: its checkpoint's config holds those values already.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.config.values import Count, Positive
from litlab.run.build import build
from litlab.run.checkpoints import SaveRunConfig

if TYPE_CHECKING:
    from litlab.run.fit import Plan
    from litlab.tracking.manifest import Manifest

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)


def find_lr(
    tuner: Tuner,
    plan: Plan,
    min_lr: Positive = 1e-6,
    max_lr: Positive = 1.0,
    num_training: Count = 100,
    mode: Literal["exponential", "linear"] = "exponential",
    early_stop_threshold: Positive | None = 4.0,
) -> tuple[str, float]:
    """Lightning's learning-rate range test: ``model.optimizer.lr`` and its suggestion, the
    steepest fall of the loss. The optimizer (and a schedule built on it) then takes it."""
    found = tuner.lr_find(
        plan.model,
        datamodule=plan.datamodule,
        min_lr=min_lr,
        max_lr=max_lr,
        num_training=num_training,
        mode=mode,
        early_stop_threshold=early_stop_threshold,
        update_attr=False,  # litlab's optimizer is a factory, not an ``lr`` attribute
    )
    lr = found.suggestion() if found else None
    if lr is None:
        raise LitlabError(
            f"tune.lr: the range test from {min_lr:g} to {max_lr:g} found no fall of the loss to "
            "suggest a learning rate from: widen it (tune.lr.min_lr, tune.lr.max_lr) or give it "
            "more steps (tune.lr.num_training)."
        )
    figures = Path(plan.cfg.paths.output_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    found.plot(suggest=True).savefig(figures / "lr_find.png", dpi=100)
    plan.model.optimizer_factory = functools.partial(plan.model.optimizer_factory, lr=lr)
    return "model.optimizer.lr", lr


def find_batch_size(
    tuner: Tuner,
    plan: Plan,
    mode: Literal["power", "binsearch"] = "power",
    steps_per_trial: Count = 3,
    max_trials: Count = 25,
    max_val: Count = 8192,
) -> tuple[str, int]:
    """Lightning's batch-size finder: ``data.batch_size`` doubled (``power``, then halved
    back in ``binsearch``) until a step runs out of memory, ``max_val`` or the data set's size
    is reached. On a CPU nothing runs out of memory: it finds the largest it may try."""
    # Lightning stops at the training set's size only for torch DataLoaders: stop there here too.
    loader = plan.datamodule.train_dataloader()
    max_val = min(max_val, len(loader) * loader.batch_size)
    size = tuner.scale_batch_size(
        plan.model,
        datamodule=plan.datamodule,
        mode=mode,
        steps_per_trial=steps_per_trial,
        max_trials=max_trials,
        max_val=max_val,
    )
    # Lightning 2.6's power mode can end one doubling past max_val, a size it never tried.
    plan.datamodule.batch_size = size = min(int(size), max_val)
    return "data.batch_size", size


def tune(plan: Plan, manifest: Manifest) -> None:
    """Run the finders ``plan.cfg.tune`` names; what they find replaces the config's values."""
    cfg = plan.cfg
    if cfg.get("ckpt_path"):
        info("tune: a resumed run keeps the values it found (run.json: tuned)")
        return
    tuner, tuned = Tuner(plan.trainer), dict(manifest.data.get("tuned") or {})
    saved = [cb for cb in plan.trainer.callbacks if isinstance(cb, SaveRunConfig)]
    for name, finder in cfg.tune.items():
        with _steps_only(plan.trainer):
            key, value = build(finder, f"tune.{name}")(tuner, plan)
        tuned[key] = {"config": OmegaConf.select(cfg, key), "found": value}
        OmegaConf.update(cfg, key, value)
        for config in (plan.config, *(c.config for c in saved), *(c.source for c in saved)):
            _set(config, key, value)  # config.yaml, run.json and the checkpoints
        print(f"litlab: tune.{name} found {key}={value:.4g}; this run trains with it.")
    manifest.update(tuned=tuned)


@contextlib.contextmanager
def _steps_only(trainer):
    """A finder runs for a number of steps (it sets ``max_steps``); a small data set's few
    batches an epoch would end it at ``max_epochs`` first, with too few points to suggest."""
    loop = trainer.fit_loop
    # Finite: the finder's own fit builds the task's schedule, whose length follows from it.
    epochs, loop.max_epochs = loop.max_epochs, 1_000_000
    try:
        yield
    finally:
        loop.max_epochs = epochs


def _set(config: dict | None, key: str, value) -> None:
    *path, last = key.split(".")
    for part in path:
        config = (config or {}).get(part)
    if config is not None:
        config[last] = value
