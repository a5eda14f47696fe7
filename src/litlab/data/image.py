"""Images kept as stored (uint8 is 4x smaller than float32), made model-ready on the device."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from litlab import LitlabError
from litlab.config.values import Count
from litlab.data.base import LitData, Split, TensorDataModule

# Channel counts an image axis can have: grey, RGB, RGBA.
_CHANNELS = (1, 3, 4)


def _per_channel(value, what: str) -> list[float]:
    """``data.normalize.<what>`` as a list of finite floats, or a one-line LitlabError."""
    # Any sequence but a string: Hydra's instantiate without _convert_ hands over a ListConfig.
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not values or not ok or not all(math.isfinite(v) for v in values):
        raise LitlabError(f"data.normalize.{what}={value!r}: give finite numbers, one per channel.")
    return [float(v) for v in values]


class ImageInput(LitData):
    """Images batched as stored, ``[N, H, W]`` (grey), ``[N, H, W, C]`` or ``[N, C, H, W]``,
    uint8 (0-255) or float, made model-ready on the device.

    ``on_after_batch_transfer`` turns each batch into what a CNN takes: float ``[N, C, H, W]``,
    uint8 scaled to [0, 1], then ``(x - mean) / std`` per channel with
    ``normalize: {mean: [...], std: [...]}`` (one value per channel; null: no normalisation).
    Subclasses call ``set_normalize`` in their ``__init__``.
    """

    def set_normalize(self, normalize: Mapping[str, float | Sequence[float]] | None) -> None:
        self.mean = self.std = None
        if normalize:
            unknown = set(normalize) - {"mean", "std"}
            if unknown or len(normalize) != 2:
                raise LitlabError(
                    f"data.normalize takes mean and std (one value per channel), "
                    f"not {sorted(normalize)}."
                )
            self.mean = _per_channel(normalize["mean"], "mean")
            self.std = _per_channel(normalize["std"], "std")
            if len(self.mean) != len(self.std) or not all(s > 0 for s in self.std):
                raise LitlabError(
                    f"data.normalize: mean {self.mean} and std {self.std} need one value per "
                    "channel each, and every std above 0."
                )
            # As tensors, made here (not while an export traces) and copied once per device.
            stats = (torch.tensor(v).view(1, -1, 1, 1) for v in (self.mean, self.std))
            self._stats = {torch.device("cpu"): tuple(stats)}

    def to_model_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as stored -> float ``[N, C, H, W]``, scaled and normalised."""
        if x.dim() == 3:
            x = x.unsqueeze(1)  # grey images: one channel
        elif x.dim() == 4 and self._channels_last(x):
            x = x.permute(0, 3, 1, 2)  # NHWC storage is channels_last memory: no copy
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if self.mean is None:
            return x
        if x.device not in self._stats:  # a copy to a GPU at every batch would wait for the GPU
            self._stats[x.device] = tuple(t.to(x.device) for t in self._stats[torch.device("cpu")])
        mean, std = self._stats[x.device]
        return (x - mean) / std

    def _channels_last(self, x: torch.Tensor) -> bool:
        """Whether a 4-D batch is ``[N, H, W, C]``: the channel count is that of ``normalize``
        where it says; otherwise whichever end has 1, 3 or 4 entries (channels first if both)."""
        if self.mean is not None and len(self.mean) > 1:
            return x.shape[1] != len(self.mean) and x.shape[-1] == len(self.mean)
        return x.shape[1] not in _CHANNELS and x.shape[-1] in _CHANNELS

    def on_after_batch_transfer(self, batch: Split, dataloader_idx: int) -> Split:
        # Scaling on the device after the copy moves 4x fewer bytes than float32 would.
        x, y = batch
        return self.to_model_input(x), y

    def normalisation(self, dtype: str = "uint8") -> dict:
        """What ``to_model_input`` does to a stored value, for ``describe_input()``: the scale,
        then mean and std, one value per channel."""
        out: dict = {"scale": 1 / 255 if dtype == "uint8" else 1.0}
        if self.mean is not None:
            out.update(mean=list(self.mean), std=list(self.std))
        return out


class ImageDataModule(ImageInput, TensorDataModule):
    """A ``TensorDataModule`` of images: ``build()`` returns them as stored (see ``ImageInput``)."""

    def __init__(
        self,
        batch_size: Count,
        eval_batch_size: Count | None = None,
        seed: int = 0,
        on_device: bool = True,
        normalize: Mapping[str, float | Sequence[float]] | None = None,
        **folds,  # fold, num_folds: cross-validation, see TensorDataModule
    ):
        super().__init__(batch_size, eval_batch_size, seed, on_device, **folds)
        self.set_normalize(normalize)
