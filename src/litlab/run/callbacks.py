"""What litlab adds to every training run, as callbacks listed in configs/callbacks/default.yaml."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

from litlab import LitlabError

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
