"""Small data sets the lessons train on: rings for a two-layer network, stand-in MNIST files."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import torch

from litlab.data.base import Split
from litlab.data.synthetic import SyntheticDataModule


def rings(n_per_class: int, generator: torch.Generator, noise: float = 0.25) -> Split:
    """Class 0 on a circle of radius 1, class 1 on a circle of radius 2, both blurred by
    ``noise``. No straight line separates them: a classifier needs a hidden layer."""
    y = torch.arange(2).repeat_interleave(n_per_class)
    angle = 2 * math.pi * torch.rand(len(y), generator=generator)
    radius = 1.0 + y + noise * torch.randn(len(y), generator=generator)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], 1)
    return x, y.float()


class RingsDataModule(SyntheticDataModule):
    """Two noisy concentric rings; train, val and test are independent draws from ``seed``.

    Sizes count points per class. Labels are floats (0.0 / 1.0), as ``BinaryClassifier`` and
    ``binary_cross_entropy`` expect.
    """

    def __init__(
        self,
        num_samples: int = 200,
        num_val: int = 200,
        num_test: int = 1000,
        noise: float = 0.25,
        batch_size: int = 50,
        **kwargs,
    ):
        super().__init__(num_samples, num_val, num_test, batch_size, **kwargs)
        self.noise = noise

    def sample(self, n_per_class: int, generator: torch.Generator) -> Split:
        return rings(n_per_class, generator, self.noise)


def write_idx(path: Path, data: torch.Tensor) -> None:
    """A tensor as an IDX file, MNIST's format: a magic number (0x08 = unsigned bytes, then the
    number of dimensions), the dimensions as big-endian 32-bit integers, then the bytes."""
    header = struct.pack(">I", 0x0800 + data.dim()) + struct.pack(f">{data.dim()}I", *data.shape)
    path.write_bytes(header + data.to(torch.uint8).numpy().tobytes())


def stand_in_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28x28 noisy images whose label is where a bright bar sits: learnable, unlike noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randint(0, 80, (n, 28, 28), generator=g)
    for i, label in enumerate(y.tolist()):
        r, c = 3 + 12 * (label // 5), 2 + 5 * (label % 5)
        x[i, r : r + 10, c : c + 4] = 255
    return x, y


def write_stand_in_mnist(root: str | Path, n_train: int = 6000, n_test: int = 1000) -> Path:
    """Write ``root/MNIST/raw/`` with the four files ``MNISTDataModule`` reads, holding
    ``stand_in_digits``: for running the MNIST lesson where the real data is not at hand."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = stand_in_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return Path(root)
