"""What every litlab LightningModule shares: optimizer from config, metrics, safe epochs."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L
import torch
from torch import nn
from torchmetrics import MetricCollection

from litlab import LitlabError

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]
STAGES = ("train", "val", "test")


class LitTask(L.LightningModule):
    """Subclasses set ``self.net``, ``self.loss_fn`` and call ``self.add_metrics(...)``.

    ``optimizer`` and ``scheduler`` are factories (Hydra ``_partial_: true``) and are kept out of
    the hyperparameters, so checkpoints hold only plain values and load with ``weights_only=True``.
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
        """Per-stage copies of ``metrics`` (None: the loss is the only metric)."""
        for stage in STAGES:
            setattr(self, f"{stage}_metrics", metrics and metrics.clone(prefix=f"{stage}/"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """What metrics compare with the targets; by default the raw output."""
        return out

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        out = self(x)
        loss = self.loss_fn(out, y)
        # Logged values are aggregated on the device: no .item() or host sync per step.
        self.log(
            f"{stage}/loss",
            loss,
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            sync_dist=stage != "train",
            batch_size=len(x),
        )
        metrics = getattr(self, f"{stage}_metrics", None)
        if metrics is not None:
            metrics.update(self.predictions(out), y)
            self.log_dict(metrics, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        self._nonfinite_steps += ~torch.isfinite(loss.detach())
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.predictions(self(batch[0]))

    def figures(self, datamodule) -> dict:
        """``{name: matplotlib Figure}`` worth looking at after testing; drawn by the ``figures``
        callback (``litlab.figures``), once, on rank 0. Tasks override this; default: none."""
        return {}

    @torch.no_grad()
    def predict_split(self, datamodule, split: str = "test", batch_size: int = 1000):
        """``(x, y, outputs)`` of a whole split, on the CPU. ``x`` as stored (e.g. uint8 images);
        the model sees it after the datamodule's ``on_after_batch_transfer``, as in training."""
        x, y = datamodule.splits[split]
        was_training = self.training
        self.eval()
        outs = []
        for i in range(0, len(x), batch_size):
            batch = (x[i : i + batch_size].to(self.device), y[i : i + batch_size].to(self.device))
            inputs, _ = datamodule.on_after_batch_transfer(batch, 0)
            outs.append(self(inputs).float().cpu())
        self.train(was_training)
        return x, y, torch.cat(outs)

    def on_train_epoch_start(self) -> None:
        # Randomness (dropout, augmentation) becomes a function of (seed, epoch, rank), so a run
        # resumed at an epoch boundary continues exactly like the uninterrupted one.
        base = getattr(self, "_base_seed", None)
        if base is None:
            base = self._base_seed = torch.initial_seed()
        torch.manual_seed((base * 1_000_003 + self.current_epoch * 1009 + self.global_rank) % 2**63)

    def on_train_epoch_end(self) -> None:
        # One host sync per epoch instead of one per step.
        bad = int(self._nonfinite_steps)
        if bad:
            raise LitlabError(
                f"The training loss was NaN or infinite in {bad} step(s) of epoch "
                f"{self.current_epoch}. Lower model.optimizer.lr, set "
                "trainer.gradient_clip_val=1.0, or check the data; the last good checkpoint "
                "(if any) is in the run's checkpoints/ folder."
            )

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, **self._scheduler_length())
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    def _scheduler_length(self) -> dict:
        """Schedulers that need the run's length (OneCycleLR's ``total_steps``) get it here."""
        factory = self.scheduler_factory
        func = getattr(factory, "func", factory)
        if func is torch.optim.lr_scheduler.OneCycleLR and "total_steps" not in getattr(
            factory, "keywords", {}
        ):
            return {"total_steps": self.trainer.estimated_stepping_batches}
        if func is torch.optim.lr_scheduler.CosineAnnealingLR and "T_max" not in getattr(
            factory, "keywords", {}
        ):
            steps = self.trainer.estimated_stepping_batches
            return {
                "T_max": steps if self.scheduler_interval == "step" else self.trainer.max_epochs
            }
        return {}
