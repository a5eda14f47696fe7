"""The optimizer and scheduler of a task, from the config's factories, fitted to the run:
what ``LitTask.configure_optimizers`` returns, and the scheduler state a resume recomputes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from litlab.models.base import LitTask

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
# Schedulers whose length follows from the run: their length argument first, then what else of
# their state depends on it.
_LENGTH_STATE = {
    torch.optim.lr_scheduler.OneCycleLR: ("total_steps", "_schedule_phases"),
    torch.optim.lr_scheduler.CosineAnnealingLR: ("T_max",),
}
_FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def optimizers(task: LitTask):
    """What ``task.configure_optimizers()`` returns: its optimizer (``build_optimizer``) and its
    scheduler, the length from the run unless the config sets it (``length_state``)."""
    optimizer = build_optimizer(task.optimizer_factory, task.parameters())
    scheduler, interval, trainer = task.scheduler_factory, task.scheduler_interval, task.trainer
    if scheduler is None:
        return optimizer
    length = {}
    if length_state(scheduler):
        steps = trainer.estimated_stepping_batches
        length = scheduler_length(scheduler, steps, interval, trainer.max_epochs)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler(optimizer, **length), "interval": interval},
    }


def length_state(factory: SchedulerFactory | None) -> tuple[str, ...]:
    """The state of ``factory``'s scheduler that follows from the run's length, when the run sets
    that length (the config does not): the length argument first."""
    keys = _LENGTH_STATE.get(getattr(factory, "func", factory), ())
    return keys if keys and keys[0] not in getattr(factory, "keywords", {}) else ()


def scheduler_length(factory: SchedulerFactory, steps: int, interval: str, epochs: int) -> dict:
    """The length argument a run of ``steps`` optimizer steps (``epochs`` epochs) gives the
    scheduler ``factory`` makes: OneCycleLR's ``total_steps``, CosineAnnealingLR's ``T_max``."""
    func = getattr(factory, "func", factory)
    steps = max(1, int(steps))
    if func is torch.optim.lr_scheduler.OneCycleLR:
        pct = getattr(factory, "keywords", {}).get("pct_start", 0.3)
        # torch divides by zero when the warm-up ends exactly at step 0 (pct * steps == 1,
        # e.g. 4 steps at pct 0.25): one step more, never taken, moves it off zero.
        return {"total_steps": steps + 1 if float(pct * steps) == 1.0 else steps}
    if func is torch.optim.lr_scheduler.CosineAnnealingLR:
        return {"T_max": steps if interval == "step" else max(1, epochs)}
    return {}


def build_optimizer(factory: OptimizerFactory, params) -> torch.optim.Optimizer:
    """``factory(params)``, with ``fused=True`` for Adam, AdamW and SGD when the parameters are
    on a CUDA device and the config leaves ``fused`` unset.

    A small model's optimizer step on a GPU is bound by kernel launches: the fused kernel updates
    every tensor in one launch where the default ``foreach`` path takes several per step.
    """
    params = list(params)
    func = getattr(factory, "func", factory)
    chosen = getattr(factory, "keywords", {})
    on_cuda = bool(params) and all(p.device.type == "cuda" for p in params)
    if on_cuda and func in _FUSABLE and chosen.get("fused") is None and not chosen.get("foreach"):
        return factory(params, fused=True)
    return factory(params)
