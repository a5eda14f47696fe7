"""What every litlab LightningModule shares: optimizer from config, metrics, safe epochs."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from functools import partial

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.utilities.parsing import collect_init_args
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from typing_extensions import override

from litlab import LitlabError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
STAGES = ("train", "val", "test")
NONFINITE_ADVICE = (
    "Lower model.optimizer.lr, set trainer.gradient_clip_val=1.0, or check the data; the last "
    "good checkpoint (if any) is in the run's checkpoints/ folder."
)
# Never hyperparameters: factories, rebuilt from the config, not from the checkpoint.
NOT_HPARAMS = ("optimizer", "scheduler")
_PLAIN = (type(None), bool, int, float, str)
# Scheduler state that follows from the run's length, which a resume may change.
_LENGTH_STATE = {
    torch.optim.lr_scheduler.OneCycleLR: ("total_steps", "_schedule_phases"),
    torch.optim.lr_scheduler.CosineAnnealingLR: ("T_max",),
}
_LENGTH_ARG = {
    torch.optim.lr_scheduler.OneCycleLR: "total_steps",
    torch.optim.lr_scheduler.CosineAnnealingLR: "T_max",
}


def is_plain(value) -> bool:
    """Whether ``value`` is plain data (None, bool, int, float, str, and lists, tuples and
    string-keyed dicts of those): what a ``weights_only=True`` checkpoint load accepts."""
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return False


def _plain(value):
    """OmegaConf containers (a model built in code from a config node) as plain lists/dicts."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


class LitTask(L.LightningModule):
    """Subclasses set ``self.net``, ``self.loss_fn`` and call ``self.add_metrics(...)``.

    ``optimizer`` and ``scheduler`` are factories (Hydra ``_partial_: true``). A bare
    ``self.save_hyperparameters()`` keeps them, and any other value that is not plain data,
    out of the hyperparameters, so checkpoints load with ``weights_only=True``.
    """

    net: nn.Module
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

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
        self.register_buffer(
            "_nonfinite_steps", torch.zeros((), dtype=torch.long), persistent=False
        )

    def add_metrics(self, metrics: MetricCollection | None) -> None:
        """Per-stage copies of ``metrics``, plus the mean loss (None: the loss alone)."""
        for stage in STAGES:
            # NaN is caught once per epoch below; the metric's own check would sync every step.
            setattr(self, f"{stage}_loss", MeanMetric(nan_strategy="disable"))
            setattr(self, f"{stage}_metrics", metrics and metrics.clone(prefix=f"{stage}/"))

    @override
    def save_hyperparameters(
        self,
        *args,
        ignore: Sequence[str] | str | None = None,
        frame=None,
        logger: bool = True,
    ) -> None:
        """Lightning's ``save_hyperparameters``, leaving out ``optimizer``, ``scheduler`` and
        every value that is not plain data (modules, callables, tensors): a checkpoint holding
        one would no longer load with ``weights_only=True``."""
        # Lightning reads the constructor's arguments from the caller's frame, not this one.
        frame = frame or inspect.currentframe().f_back
        ignore = [ignore] if isinstance(ignore, str) else list(ignore or [])
        given: dict = {}
        for level in collect_init_args(frame, [], classes=(L.LightningModule,)):
            given.update(level)
        # Named up front, so Lightning does not warn about the modules it would otherwise keep.
        ignore += [k for k, v in given.items() if k in NOT_HPARAMS or not is_plain(_plain(v))]
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        # What came in another way (a dict passed as ``args``) is checked here.
        for key, value in list(self._hparams.items()):
            value = _plain(value)
            if key in NOT_HPARAMS or not is_plain(value):
                del self._hparams[key]
            else:
                self._hparams[key] = value
        self._hparams_initial = copy.deepcopy(self._hparams)

    @override
    def __setattr__(self, name: str, value) -> None:
        # Lightning sets _current_fx_name around every hook, ~50 times a step; nn.Module's
        # parameter and submodule checks on each cost more than a tiny model's whole step.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """What metrics compare with the targets; by default the raw output."""
        return out

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
        self._nonfinite_steps.add_(~torch.isfinite(loss.detach()))
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss.detach(), prog_bar=True)
        return loss

    @override
    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    @override
    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    # What the raw output means, for the JSON litlab-export writes next to an exported model.
    output_meaning = "the predicted value"

    def prediction_columns(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """What one prediction row holds, one 1-D tensor per column (litlab-predict's file).

        Regressions: ``prediction`` (``prediction_<i>`` for several outputs); classifiers add
        the class probabilities.
        """
        out = out.float()
        if out.dim() == 1 or out.shape[-1] == 1:
            return {"prediction": out.reshape(len(out))}
        return {f"prediction_{i}": out[:, i] for i in range(out.shape[-1])}

    @override
    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        return self.prediction_columns(self(batch[0]))

    def figures(self, datamodule) -> dict:
        """``{name: matplotlib Figure}`` worth looking at after testing; drawn by the ``figures``
        callback (``litlab.tracking.figures``), once, on rank 0. Tasks override this; default:
        none."""
        return {}

    @torch.no_grad()
    def predict_split(self, datamodule: L.LightningDataModule, split: str = "test"):
        """``(x, y, outputs)`` of a whole split, all three on the CPU, ready for numpy.

        Reads the datamodule's own ``<split>_dataloader()`` (``split``: train, val or test), so
        any LightningDataModule works. ``x`` is as the loader yields it (e.g. uint8 images); the
        model sees each batch moved to its device and passed through the datamodule's
        ``on_after_batch_transfer``, as in training. ``outputs`` are float32. Under DDP a
        ``TensorDataModule`` gives each rank its share, so rank 0's pictures show its share.
        """
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
        finally:
            self.train(was_training)
        return torch.cat(xs), torch.cat(ys), torch.cat(outs)

    @override
    def on_train_epoch_start(self) -> None:
        # Randomness (dropout, augmentation) becomes a function of (seed, epoch, rank), so a run
        # resumed at an epoch boundary continues exactly like the uninterrupted one.
        base = getattr(self, "_base_seed", None)
        if base is None:
            base = self._base_seed = torch.initial_seed()
        torch.manual_seed((base * 1_000_003 + self.current_epoch * 1009 + self.global_rank) % 2**63)

    @override
    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    @override
    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        # One host sync per epoch instead of one per step.
        bad = int(self._nonfinite_steps)
        if bad:
            raise LitlabError(
                f"The training loss was NaN or infinite in {bad} step(s) of epoch "
                f"{self.current_epoch}. {NONFINITE_ADVICE}"
            )

    @override
    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_factory, self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, **self._scheduler_length())
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    def _scheduler_class(self) -> type | None:
        factory = self.scheduler_factory
        return getattr(factory, "func", factory)

    def _length_is_ours(self) -> bool:
        """Whether the scheduler's length comes from the run (not set in the config)."""
        arg = _LENGTH_ARG.get(self._scheduler_class())
        return arg is not None and arg not in getattr(self.scheduler_factory, "keywords", {})

    def _scheduler_length(self) -> dict:
        """Schedulers that need the run's length (OneCycleLR's ``total_steps``) get it here."""
        if not self._length_is_ours():
            return {}
        steps = self.trainer.estimated_stepping_batches
        return scheduler_length(
            self.scheduler_factory, steps, self.scheduler_interval, self.trainer.max_epochs
        )

    @override
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # A resume may train longer than the run it continues (trainer.max_epochs raised): the
        # schedule takes the new length, computed in configure_optimizers, and only the rest of
        # its state (steps taken, learning rates) from the checkpoint.
        if self._length_is_ours():
            for state in checkpoint.get("lr_schedulers", []):
                for key in _LENGTH_STATE[self._scheduler_class()]:
                    state.pop(key, None)


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


_FUSABLE = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


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
