"""``LitTask``, the base of every litlab task, and the contract a task keeps.

A task's ``__init__`` takes its own settings and ``**kwargs`` (``optimizer``, ``scheduler``,
``scheduler_interval``: factories and a word from the config), calls
``super().__init__(**kwargs)``, then:

- ``self.save_hyperparameters()``, bare: plain arguments are stored in the checkpoint and
  logged; ``optimizer``, ``scheduler`` and whatever is not plain data (modules, functions,
  tensors) are left out, so checkpoints load with ``torch.load(..., weights_only=True)``;
- sets ``self.net`` (what ``forward`` runs) and ``self.loss_fn(out, y)``;
- calls ``self.add_metrics(MetricCollection({...}))`` (``None``: the loss alone), logged once
  per epoch as ``train/<name>``, ``val/<name>``, ``test/<name>`` beside ``<stage>/loss``.

It may override, each with a default below: ``predictions(out)`` (what the metrics compare with
``y``), ``prediction_columns(out)`` (one row of litlab-predict's file), ``output_meaning`` (what
the raw output means, for litlab-export's JSON), ``figures(datamodule)`` (pictures drawn after
testing; ``predict_split`` reads a bounded sample of a split for them) and ``summary()``
(numbers recorded as ``fit/<key>`` in run.json and the loggers after fitting), besides any
Lightning hook.

What LitTask does on its own (``litlab.models.optim``): the optimizer takes the fused kernel on
a GPU; a scheduler whose length follows from the run (OneCycleLR's ``total_steps``,
CosineAnnealingLR's ``T_max``, unless the config sets it) gets it in ``configure_optimizers``.
The rest is done by callbacks, so overriding a hook loses none of it: a resume takes from the
config what it changed since the checkpoint (a longer run, a new learning rate), the progress
from the checkpoint (``litlab.run.resume.ContinueFromConfig``, added to every run in code);
reseeding every epoch (exact resumes) and stopping on a NaN loss (``litlab.run.callbacks``,
listed in ``configs/callbacks/default.yaml``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from typing_extensions import override

from litlab.models.optim import (
    OptimizerFactory,
    SchedulerFactory,
    optimizers,
)

STAGES = ("train", "val", "test")
# Never hyperparameters: factories, rebuilt from the config, not from the checkpoint.
NOT_HPARAMS = ("optimizer", "scheduler")


def is_plain(value) -> bool:
    """Whether ``value`` is plain data (None, bool, int, float, str, and lists, tuples and
    string-keyed dicts of those): what a ``weights_only=True`` checkpoint load accepts."""
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return isinstance(value, (type(None), bool, int, float, str))


class LitTask(L.LightningModule):
    """Training, validation and test steps, per-epoch metrics, the optimizer and scheduler from
    the config, and prediction rows: see the module's docstring for what a task sets."""

    net: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    # What the raw output means, for the JSON litlab-export writes next to an exported model.
    output_meaning = "the predicted value"

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "step",
    ):
        super().__init__()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.scheduler_factory = scheduler
        self.scheduler_interval = scheduler_interval

    def add_metrics(self, metrics: MetricCollection | None) -> None:
        """Per-stage copies of ``metrics``, plus the mean loss (None: the loss alone)."""
        for stage in STAGES:
            # The StopOnNonFinite callback checks the loss once per epoch; the metric's own NaN
            # check would sync with the device every step.
            setattr(self, f"{stage}_loss", MeanMetric(nan_strategy="disable"))
            setattr(self, f"{stage}_metrics", metrics and metrics.clone(prefix=f"{stage}/"))

    @override
    def save_hyperparameters(self, *args, ignore=None, frame=None, logger: bool = True) -> None:
        """Lightning's, less ``optimizer``, ``scheduler`` and every value that is not plain data
        (modules, callables, tensors): a checkpoint holding one would not load with
        ``weights_only=True``. Config nodes are kept as plain lists and dicts."""
        frame = frame or inspect.currentframe().f_back  # Lightning reads the caller's arguments
        with warnings.catch_warnings():  # Lightning's advice to ignore modules: done below
            warnings.filterwarnings("ignore", "Attribute '.*' is an instance of `nn.Module`")
            super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        # Saved again, plain: ``ignore`` drops saved keys, and what loggers record is reset too.
        values = dict(self.hparams)
        for k, v in values.items():
            if isinstance(v, DictConfig | ListConfig):  # a model built in code from a config
                values[k] = OmegaConf.to_container(v, resolve=True)
        dropped = [k for k, v in values.items() if k in NOT_HPARAMS or not is_plain(v)]
        super().save_hyperparameters(values, ignore=dropped, frame=frame, logger=logger)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """What metrics compare with the targets; by default the raw output."""
        return out

    def prediction_columns(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """One row of litlab-predict's file per sample, a 1-D tensor per column. By default the
        raw output: ``prediction`` (``prediction_<i>`` for several outputs)."""
        out = out.float()
        if out.dim() == 1 or out.shape[-1] == 1:
            return {"prediction": out.reshape(len(out))}
        return {f"prediction_{i}": out[:, i] for i in range(out.shape[-1])}

    def figures(self, datamodule: L.LightningDataModule) -> dict:
        """``{name: matplotlib Figure}`` worth looking at after testing, drawn once on rank 0 by
        the ``figures`` callback (``litlab.tracking.figures``). By default none."""
        return {}

    def summary(self) -> dict[str, float]:
        """Numbers a fitted model tells about itself (a regression's coefficients), recorded as
        ``fit/<key>`` after fitting. By default none."""
        return {}

    def _step(self, batch, stage: str) -> torch.Tensor:
        # Per step, metrics only accumulate on the device; they are logged once per epoch
        # (self.log costs ~0.5 ms a call in Lightning 2.6, more than a small model's step).
        x, y = batch
        out = self(x)
        loss = self.loss_fn(out, y)
        getattr(self, f"{stage}_loss").update(loss.detach(), len(x))
        metrics = getattr(self, f"{stage}_metrics")
        if metrics is not None:
            metrics.update(self.predictions(out.detach()), y)
        return loss

    def _log_epoch(self, stage: str) -> None:
        """The stage's epoch metrics, synchronized across DDP ranks by torchmetrics."""
        loss, metrics = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_metrics")
        if loss.update_count == 0:
            return
        values = {f"{stage}/loss": loss.compute()}
        if metrics is not None:
            values.update(metrics.compute())
            metrics.reset()
        loss.reset()
        self.log_dict(values, prog_bar=True)

    @override
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss.detach(), prog_bar=True)
        return loss

    @override
    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    @override
    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.prediction_columns(self(batch[0]))

    @override
    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    @torch.no_grad()
    def predict_split(
        self, datamodule: L.LightningDataModule, split: str = "test", limit: int | None = 10_000
    ):
        """``(x, y, outputs)`` of a split's first ``limit`` samples (``None``: all; a figure needs
        a sample, not all of a large split) read through any datamodule's own
        ``<split>_dataloader()``, all three on the CPU; ``x`` as the loader yields it (uint8
        images), ``outputs`` float32. The model sees each batch on its device, after
        ``on_after_batch_transfer``, as in training. Under DDP: this rank's share."""
        loader = getattr(datamodule, f"{split}_dataloader")()
        was_training = self.training
        self.eval()
        xs, ys, outs = [], [], []
        try:
            for batch in loader:
                moved = move_data_to_device(batch, self.device)
                inputs = datamodule.on_after_batch_transfer(moved, 0)[0]
                outs.append(self(inputs).float().cpu())
                xs.append(batch[0].cpu())
                ys.append(batch[1].cpu())
                if limit is not None and sum(map(len, ys)) >= limit:
                    break
        finally:
            self.train(was_training)
        return torch.cat(xs)[:limit], torch.cat(ys)[:limit], torch.cat(outs)[:limit]

    @override
    def configure_optimizers(self):
        return optimizers(self)
