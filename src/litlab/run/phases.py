"""The run's phases, logged to ``train.log`` as Lightning reaches them (rank 0 only)."""

from __future__ import annotations

import logging

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from litlab.tracking.provenance import hardware

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)


class LogPhases(Callback):
    """Fit started (epochs, devices, precision), data ready (samples, batches), fit ended (epoch,
    step, best checkpoint), testing (samples), tested (which weights, the test metrics)."""

    @override
    def on_fit_start(self, trainer, pl_module) -> None:
        hw = hardware(trainer)
        info("fit started: %s epoch(s) on %s x %s, precision %s", trainer.max_epochs,
             hw["devices"], hw["accelerator"], hw["precision"])  # fmt: skip

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        val = sum(_samples(dl) or 0 for dl in _as_list(trainer.val_dataloaders))
        info("data ready: %s training samples (%s batches per epoch), %s validation samples",
             _samples(trainer.train_dataloader), trainer.num_training_batches, val)  # fmt: skip

    @override
    def on_fit_end(self, trainer, pl_module) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", None) or None
        info("fit ended at epoch %s, step %s; best checkpoint %s", trainer.current_epoch,
             trainer.global_step, best)  # fmt: skip

    @override
    def on_test_start(self, trainer, pl_module) -> None:
        test = sum(_samples(dl) or 0 for dl in _as_list(trainer.test_dataloaders))
        info("testing on %s samples", test)

    @override
    def on_test_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        listed = ", ".join(f"{k} {float(v):.4g}" for k, v in sorted(metrics.items())
                           if k.startswith("test/") and v.numel() == 1)  # fmt: skip
        info("tested %s: %s", trainer.ckpt_path or "the final weights", listed)


def _as_list(loaders) -> list:
    return list(loaders) if isinstance(loaders, list | tuple) else [loaders] if loaders else []


def _samples(loader) -> int | None:
    """A loader's sample count: its dataset's length, or what a tensor loader says it holds."""
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):  # no dataset, or one without a length (iterable)
        return getattr(loader, "num_samples", None)
