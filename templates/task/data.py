"""TEMPLATE: a litlab data module. Copy to ``src/litlab/data/<name>.py`` and make it yours.

This one draws 2-D points and labels each by the sector of the plane it falls in (``num_classes``
equal slices around the origin): small, seeded, and learnable by a small network in seconds.
Replace ``sample`` with your data; keep the constructor's contract.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from annotated_types import Ge

from litlab.config.values import Count
from litlab.data.base import Split, TensorDataModule


class MyDataModule(TensorDataModule):
    """Train, val and test splits held in memory as ``(x, y)`` tensors.

    ``TensorDataModule`` does the rest: batches by slicing (no per-sample ``__getitem__``), a
    shuffle that is a pure function of (seed, epoch), a copy onto the GPU once
    (``on_device``), and each DDP rank its share. Not in memory? Any ``LightningDataModule``
    with ``train/val/test_dataloader()`` works too: litlab reads pictures and predictions
    through those loaders.
    """

    # The types carry the ranges: a config value outside one is refused before a run starts,
    # in one line naming the key. ``Count`` is ``Annotated[int, Ge(1)]``; a float is finite.
    def __init__(
        self,
        num_classes: Annotated[int, Ge(2)] = 3,
        num_samples: Count = 2000,
        num_val: Count = 500,
        num_test: Count = 1000,
        # The contract every litlab data module keeps: the config passes these four
        # (seed as ``seed: ${seed}``, so one run-level seed decides the data too).
        batch_size: Count = 64,
        eval_batch_size: Count | None = None,
        seed: int = 0,
        on_device: bool = True,
        **folds,  # fold, num_folds: k-fold cross-validation, done by TensorDataModule
    ):
        super().__init__(batch_size, eval_batch_size, seed, on_device, **folds)
        self.num_classes = num_classes
        self.sizes = {"train": num_samples, "val": num_val, "test": num_test}

    def sample(self, n: int, generator: torch.Generator) -> Split:
        """``n`` points and their labels: the part to replace with your data."""
        x = torch.randn(n, 2, generator=generator)
        angle = torch.atan2(x[:, 1], x[:, 0]) + math.pi  # in [0, 2 pi]
        y = (angle / (2 * math.pi) * self.num_classes).long().clamp(max=self.num_classes - 1)
        return x, y

    def build(self) -> dict[str, Split]:
        """What ``TensorDataModule.setup`` calls once: ``{"train": (x, y), "val": ..., "test":
        ...}``, x and y tensors with one row per sample. Read files here; download in
        ``prepare_data`` (it runs on one process only)."""
        return {
            split: self.sample(n, torch.Generator().manual_seed(self.seed * 3 + i))
            for i, (split, n) in enumerate(self.sizes.items())
        }

    def describe_input(self) -> dict:
        """One sample as stored, for ``litlab-predict input=...`` and ``litlab-export``:
        shape, dtype, column names, normalisation, class names. Known without reading data."""
        return {
            "shape": [2],
            "dtype": "float32",
            "names": ["x1", "x2"],
            "normalisation": None,
            "class_names": [f"sector {i}" for i in range(self.num_classes)],
        }

    # Preprocessing on the device (scaling uint8 images, adding a channel axis...) goes in
    # ``on_after_batch_transfer(self, batch, dataloader_idx)``: it runs after the copy, in
    # training, testing, pictures, litlab-predict and inside exported models alike.
    # Images? Subclass ``litlab.data.image.ImageDataModule`` instead: it does that already.
