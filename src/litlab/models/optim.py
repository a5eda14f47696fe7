"""The optimizer and scheduler of a task, from the config's factories, fitted to the run:
what ``LitTask.configure_optimizers`` returns, and what a resume takes from the config rather
than from the checkpoint (``continue_from_config``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

if TYPE_CHECKING:
    from litlab.models.base import LitTask

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
# The schedulers litlab ships, which a resume rebuilds from the config: the argument that sets
# their length (from the run's, unless the config gives it), and their rates at the current step
# from their settings alone. CosineAnnealingLR's own step is recursive, each rate from the last:
# restored at the end of a schedule (rate 0), it would stay at 0 however long the run goes on.
REBUILT = {
    OneCycleLR: ("total_steps", OneCycleLR.get_lr),  # closed form already
    CosineAnnealingLR: ("T_max", CosineAnnealingLR._get_closed_form_lr),
}
# What a scheduler's state holds of its progress, which a resume keeps: the rest is the config's.
_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "_is_initial", "_get_lr_called_within_step")
_FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def optimizers(task: LitTask):
    """What ``task.configure_optimizers()`` returns: its optimizer (``build_optimizer``) and its
    scheduler, the length from the run unless the config sets it."""
    optimizer = build_optimizer(task.optimizer_factory, task.parameters())
    scheduler, interval, trainer = task.scheduler_factory, task.scheduler_interval, task.trainer
    if scheduler is None:
        return optimizer
    length = {}
    if _length_from_run(scheduler):
        steps = trainer.estimated_stepping_batches
        length = scheduler_length(scheduler, steps, interval, trainer.max_epochs)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler(optimizer, **length), "interval": interval},
    }


def _length_from_run(factory: SchedulerFactory) -> bool:
    """Whether ``factory``'s scheduler takes its length from the run (the config leaves it)."""
    length, _ = REBUILT.get(getattr(factory, "func", factory), (None, None))
    return length is not None and length not in getattr(factory, "keywords", {})


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


def continue_from_config(task: LitTask) -> None:
    """After a resume restored the optimizer and scheduler from the checkpoint: what the config
    changed since (``trainer.max_epochs`` raised, ``model.optimizer.lr=...``) replaces what was
    restored, so the run goes on as its config says; only the progress (the optimizer's
    moments, the steps taken) is the checkpoint's. A changed schedule is rebuilt from the config
    and its rates set to what they are at the step reached. When nothing changed, nothing is
    touched: a resume of the same config is exact, bit for bit.

    ``litlab.run.resume`` refuses, before the run, what cannot be applied this way: another
    optimizer or scheduler, a setting that is not a number, a changed schedule not in ``REBUILT``.
    """
    fresh = optimizers(task)  # the config's optimizer and schedule, on the same weights
    new_optimizer = fresh["optimizer"] if isinstance(fresh, dict) else fresh
    optimizer = task.optimizers(use_pl_optimizer=False)
    groups = list(zip(optimizer.param_groups, new_optimizer.param_groups, strict=True))
    settings = set(getattr(task.optimizer_factory, "keywords", {}))  # what the config sets
    if isinstance(fresh, dict):
        settings.discard("lr")  # the schedule's: a new rate shows in the schedule's state
    changed = {
        key for ours, new in groups for key in settings & new.keys() if ours[key] != new[key]
    }
    for ours, new in groups:
        ours.update({key: new[key] for key in changed})
    scheduler = task.lr_schedulers()
    if not isinstance(fresh, dict) or type(scheduler) not in REBUILT:
        return
    restored, wanted = scheduler.state_dict(), fresh["lr_scheduler"]["scheduler"].state_dict()
    if not changed and all(restored.get(k) == v for k, v in wanted.items() if k not in _PROGRESS):
        return
    scheduler.load_state_dict({**wanted, **{k: restored[k] for k in _PROGRESS if k in restored}})
    for ours, new in groups:  # what the scheduler keeps in the groups: initial_lr, max_lr, ...
        ours.update({k: v for k, v in new.items() if k not in optimizer.defaults and k != "params"})
    _, rates_now = REBUILT[type(scheduler)]
    with warnings.catch_warnings():  # OneCycleLR.get_lr asks to be called from step() only
        warnings.simplefilter("ignore", UserWarning)
        rates = rates_now(scheduler)  # OneCycleLR's also sets the momentum of the step reached
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        group["lr"] = rate
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
