"""Synthetic tasks whose right answers are known: lines, sines and Gaussian blobs."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from litlab.config.values import Count, NonNegative, Positive
from litlab.data.base import Split, TensorDataModule


class SyntheticDataModule(TensorDataModule):
    """Train, val and test are independent draws, each from its own generator seeded by the run
    (with ``num_folds``, val is a fold of the training draw instead)."""

    def __init__(
        self,
        num_samples: Count = 1000,
        num_val: Count = 200,
        num_test: Count = 1000,
        batch_size: Count = 100,
        eval_batch_size: Count | None = None,
        seed: int = 0,
        on_device: bool = True,
        **folds,  # fold, num_folds: cross-validation, see TensorDataModule
    ):
        eval_batch_size = eval_batch_size or max(num_val, num_test)
        super().__init__(batch_size, eval_batch_size, seed, on_device, **folds)
        self.sizes = {"train": num_samples, "val": num_val, "test": num_test}

    def sample(self, n: int, generator: torch.Generator) -> Split:
        raise NotImplementedError

    def generator(self, split: str) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 3 + list(self.sizes).index(split))

    def build(self) -> dict[str, Split]:
        return {s: self.sample(n, self.generator(s)) for s, n in self.sizes.items()}

    def describe_input(self) -> dict:
        """One input sample as the model takes it: what litlab-predict reads user data into and
        litlab-export records next to an exported model. Taken from one fresh draw, so every
        subclass describes its own samples without reading the data set."""
        x, _ = self.sample(1, torch.Generator().manual_seed(0))
        shape = list(x.shape[1:])
        names = ["x"] if shape == [1] else [f"x{i + 1}" for i in range(shape[0])]
        dtype = str(x.dtype).removeprefix("torch.")
        return {"shape": shape, "dtype": dtype, "names": names, "normalisation": None}


class LinearDataModule(SyntheticDataModule):
    """``y = slope * x + intercept + N(0, noise_std)`` with ``x ~ U(low, high)``."""

    def __init__(
        self,
        slope: float = 2.0,
        intercept: float = 5.0,
        noise_std: NonNegative = 1.0,
        low: float = 0.0,
        high: float = 10.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.slope, self.intercept, self.noise_std = slope, intercept, noise_std
        self.low, self.high = low, high

    def sample(self, n: int, generator: torch.Generator) -> Split:
        x = self.low + (self.high - self.low) * torch.rand(n, 1, generator=generator)
        noise = self.noise_std * torch.randn(n, 1, generator=generator)
        return x, self.slope * x + self.intercept + noise


class SineDataModule(SyntheticDataModule):
    """``y = sin(x) + N(0, noise_std)`` on ``[low, high]``."""

    def __init__(
        self, low: float = -math.pi, high: float = math.pi, noise_std: NonNegative = 0.0, **kwargs
    ):
        super().__init__(**kwargs)
        self.low, self.high, self.noise_std = low, high, noise_std

    def sample(self, n: int, generator: torch.Generator) -> Split:
        x = self.low + (self.high - self.low) * torch.rand(n, 1, generator=generator)
        return x, torch.sin(x) + self.noise_std * torch.randn(n, 1, generator=generator)


class BlobsDataModule(SyntheticDataModule):
    """Two 2-D Gaussian blobs; label ``i`` for ``centers[i]``. All sizes count points per class."""

    def __init__(
        self,
        centers: Sequence[Sequence[float]] = ((2.7, 2.7), (-0.7, -0.7)),
        std: Positive = 1.0,
        num_samples: Count = 100,
        num_val: Count = 500,
        num_test: Count = 5000,
        **kwargs,
    ):
        super().__init__(num_samples=num_samples, num_val=num_val, num_test=num_test, **kwargs)
        self.centers = torch.tensor(centers, dtype=torch.float32)
        self.std = std

    def sample(self, n_per_class: int, generator: torch.Generator) -> Split:
        y = torch.arange(len(self.centers)).repeat_interleave(n_per_class)
        x = self.centers[y] + self.std * torch.randn(len(y), 2, generator=generator)
        return x, y.float()

    def describe_input(self) -> dict:
        return {
            **super().describe_input(),
            "class_names": [str(i) for i in range(len(self.centers))],
        }

    def bayes_accuracy(self) -> float:
        """Accuracy of the optimal classifier for two equal-variance, equally likely blobs."""
        half_gap = torch.dist(self.centers[0], self.centers[1]).item() / 2
        return 0.5 * (1 + math.erf(half_gap / self.std / math.sqrt(2)))
