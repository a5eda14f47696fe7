"""What litlab adds to every training run, as callbacks listed in configs/callbacks/default.yaml."""

from __future__ import annotations

import logging

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from litlab import LitlabError
from litlab.tracking.provenance import hardware

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)

NONFINITE_ADVICE = (
    "Lower model.optimizer.lr, set trainer.gradient_clip_val=1.0, or check the data; the last "
    "good checkpoint (if any) is in the run's checkpoints/ folder."
)


class ReseedEveryEpoch(Callback):
    """Reseeds torch's global RNG as each training epoch starts, from ``(seed, epoch, rank)``:
    the model's randomness (dropout, augmentation) then depends on those alone, so a run resumed
    at an epoch boundary continues exactly like the uninterrupted one."""

    def __init__(self, seed: int):
        self.seed = seed

    @override
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        epoch, rank = trainer.current_epoch, trainer.global_rank
        torch.manual_seed((self.seed * 1_000_003 + epoch * 1009 + rank) % 2**63)


class StopOnNonFinite(Callback):
    """Ends training with a LitlabError and advice once an epoch had a NaN or infinite training
    loss. Steps are counted on the device and read once per epoch: a host sync per step would
    cost more than a small model's step."""

    @override
    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.bad_steps = torch.zeros((), dtype=torch.long, device=pl_module.device)

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.bad_steps.add_(~torch.isfinite(outputs["loss"]))  # Lightning's detached copy

    @override
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if bad := int(self.bad_steps):
            raise LitlabError(
                f"The training loss was NaN or infinite in {bad} step(s) of epoch "
                f"{trainer.current_epoch}. {NONFINITE_ADVICE}"
            )


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
