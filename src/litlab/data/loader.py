"""Batches straight from in-memory tensors: one indexing op per batch, not one call per sample."""

from __future__ import annotations

import math

import torch


class EpochSampler:
    """The index order of one rank for one epoch, a pure function of (seed, epoch, rank).

    Lightning calls ``set_epoch`` on a loader's ``sampler`` before every epoch, so a resumed run
    sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, n: int, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.n, generator=g)
            # Equal shard sizes keep DDP ranks in lock-step (a rank with an extra batch would hang).
            order = order[: self.n - self.n % self.world_size]
        else:
            order = torch.arange(self.n)
        return order[self.rank :: self.world_size]

    # As a DataLoader's sampler (litlab.data.workers), it yields the same order.
    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return len(self.indices())


class TensorLoader:
    """An iterable of ``(x, y)`` batches sliced from tensors, usable wherever a DataLoader is."""

    batch_sampler = None  # Lightning inspects DataLoader-like attributes; batching is ours

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.x, self.y = x, y
        self.batch_size, self.drop_last = batch_size, drop_last
        self.sampler = EpochSampler(len(x), shuffle, seed, rank, world_size)

    @property
    def num_samples(self) -> int:
        """The samples this rank sees in one epoch."""
        return len(self.sampler.indices())

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        if self.sampler.shuffle is False and self.sampler.world_size == 1:
            idx = None  # contiguous slices are views: no copy at all
        else:
            # One copy per epoch: with the data on a GPU, batches are then indexed there
            # without a host-to-device copy (and its implicit sync) per step.
            idx = self.sampler.indices().to(self.x.device)
        for i in range(len(self)):
            lo, hi = i * self.batch_size, (i + 1) * self.batch_size
            if idx is None:
                yield self.x[lo:hi], self.y[lo:hi]
            else:
                b = idx[lo:hi]
                yield self.x[b], self.y[b]
