"""What litlab asks of a data module (``LitData``), and ``TensorDataModule``, the shape every
litlab data module takes: tensors in memory, batches by slicing."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from litlab import LitlabError
from litlab.config.values import Count, Natural
from litlab.data.loader import TensorLoader
from litlab.data.splits import carve, check_folds

Split = tuple[torch.Tensor, torch.Tensor]


class LitData(L.LightningDataModule):
    """Training takes any LightningDataModule whose ``train/val/test_dataloader()`` yield
    ``(x, y)`` (preprocessing on the device in ``on_after_batch_transfer``); litlab-predict and
    litlab-export also ask it what its samples are, through these methods."""

    def describe_input(self) -> dict:
        """One sample as stored, known without reading the data: ``shape``, ``dtype``,
        ``names`` (of columns), ``normalisation``, ``class_names``; for images, ``image``: what
        one shows (see MNIST's)."""
        raise LitlabError(
            f"{type(self).__name__} does not say what one input looks like: give it a "
            "describe_input() method (see litlab.data.MNISTDataModule)."
        )

    def read_image(self, path: Path) -> np.ndarray:
        """An image file as one stored sample, for ``litlab-predict input=`` on image models."""
        raise LitlabError(f"{path}: {type(self).__name__} reads no image files.")


class TensorDataModule(LitData):
    """Subclasses implement ``build()``: ``{"train": (x, y), "val": ..., "test": ...}``.

    Cross-validation (``fold`` of ``num_folds``): ``val`` is that fold of the training split,
    which keeps the other folds; the test split is untouched. ``y`` of shape ``[n]`` holds class
    ids, and the folds keep their shares (stratified)."""

    def __init__(
        self,
        batch_size: Count,
        eval_batch_size: Count | None = None,
        seed: int = 0,
        on_device: bool = True,
        fold: Natural | None = None,
        num_folds: Count | None = None,
    ):
        super().__init__()
        self.on_device = on_device
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.folds = check_folds(fold, num_folds)
        self.splits: dict[str, Split] = {}

    def build(self) -> dict[str, Split]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self.build()
            if self.folds:  # the build's own val split gives way to the fold
                x, y = self.splits["train"]
                labels = y.numpy() if y.ndim == 1 else None
                parts = carve(len(x), self.seed, {}, "training samples", self.folds, labels)
                self.splits |= {s: (x[i], y[i]) for s, i in parts.items()}
        device = self.trainer.strategy.root_device if self.trainer else None
        if self.on_device and device is not None and device.type != "cpu":
            # Small data sets fit on the accelerator: copy once, not once per batch.
            self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}

    def teardown(self, stage: str | None = None) -> None:
        # Lightning hands the model back on the CPU after fit/test; the data follows, so what a
        # finished run leaves (run.datamodule.splits) can go straight to numpy and matplotlib.
        self.splits = {k: (x.cpu(), y.cpu()) for k, (x, y) in self.splits.items()}

    def _loader(self, split: str, train: bool = False) -> TensorLoader:
        self.setup()
        x, y = self.splits[split]
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        return TensorLoader(
            x,
            y,
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )

    def train_dataloader(self) -> TensorLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> TensorLoader:
        return self._loader("val")

    def test_dataloader(self) -> TensorLoader:
        return self._loader("test")

    def predict_dataloader(self) -> TensorLoader:
        return self._loader("test")
