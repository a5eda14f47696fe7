"""Data read from files by DataLoader worker processes: the base of litlab's on-disk modules."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from litlab.config.values import Count, Natural
from litlab.data.base import LitData
from litlab.data.loader import EpochSampler
from litlab.data.splits import check_folds


def one_thread(worker_id: int) -> None:
    """Each worker is a process of its own: torch's default, one compute thread per core in
    every one of them, oversubscribes the cores (14x slower on 2 cores, issue 20)."""
    torch.set_num_threads(1)


class TrainingOrder(EpochSampler):
    """The seeded training order, each index with its epoch: ``(epoch, index)``. A dataset that
    seeds its augmentation by them draws the same in a resumed run, with any number of workers.
    Under DDP, Lightning shards it (``DistributedSamplerWrapper``) and forwards ``set_epoch``."""

    def __iter__(self):
        epoch = self.epoch
        return ((epoch, i) for i in self.indices().tolist())


class LazyLoader(DataLoader):
    """A DataLoader whose workers start reading at the first batch, not when the iterator is
    made: a resumed run makes it before Lightning's ``set_epoch``, and the workers' read-ahead
    would take epoch 0's order (Lightning's distributed sampler reads its epoch then too)."""

    def __iter__(self):
        yield from super().__iter__()


class WorkerDataModule(LitData):
    """Subclasses implement ``build()``: ``{"train": Dataset, "val": ..., "test": ...}`` of
    ``(x, y)`` samples; the train split's dataset is indexed by ``(epoch, index)``
    (``TrainingOrder``), the others by index. ``persistent_workers`` and ``prefetch_factor``
    apply when ``num_workers`` > 0, ``pin_memory`` when training on a GPU. With ``fold`` of
    ``num_folds``, ``build()`` takes ``val`` from that fold of the training data
    (``litlab.data.splits.carve``), stratified by class for classifiers."""

    def __init__(
        self,
        batch_size: Count,
        eval_batch_size: Count | None = None,
        seed: int = 0,
        num_workers: Natural = 2,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        prefetch_factor: Count = 2,
        fold: Natural | None = None,
        num_folds: Count | None = None,
    ):
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.seed = seed
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.persistent_workers, self.prefetch_factor = persistent_workers, prefetch_factor
        self.folds = check_folds(fold, num_folds)
        self.datasets: dict[str, Dataset] = {}

    def build(self) -> dict[str, Dataset]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets = self.build()

    def _loader(self, split: str, train: bool = False) -> LazyLoader:
        self.setup()
        dataset = self.datasets[split]
        order = (TrainingOrder if train else EpochSampler)(len(dataset), train, self.seed)
        workers = self.num_workers > 0
        device = self.trainer.strategy.root_device if self.trainer else torch.device("cpu")
        return LazyLoader(
            dataset,
            self.batch_size if train else self.eval_batch_size,
            sampler=order,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and device.type == "cuda",
            worker_init_fn=one_thread if workers else None,
            persistent_workers=self.persistent_workers and workers,
            prefetch_factor=self.prefetch_factor if workers else None,
        )

    def train_dataloader(self) -> LazyLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> LazyLoader:
        return self._loader("val")

    def test_dataloader(self) -> LazyLoader:
        return self._loader("test")

    def predict_dataloader(self) -> LazyLoader:
        return self._loader("test")
