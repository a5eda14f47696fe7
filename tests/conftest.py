"""Shared test helpers: tiny MNIST files written here, configs composed in-process, CLI runs."""

from __future__ import annotations

import csv
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from litlab.config import compose

BIN = Path(sys.executable).parent


def write_idx(path: Path, data: torch.Tensor) -> None:
    """The IDX format MNIST ships in: magic (type 0x08 = ubyte, ndim), big-endian dims, bytes."""
    header = struct.pack(">I", 0x0800 + data.dim()) + struct.pack(f">{data.dim()}I", *data.shape)
    path.write_bytes(header + data.to(torch.uint8).numpy().tobytes())


def fake_digits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """28x28 images whose label sets where a bright square sits: learnable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randint(0, 60, (n, 28, 28), generator=g)
    for i, label in enumerate(y.tolist()):
        r, c = 3 + 12 * (label // 5), 2 + 5 * (label % 5)
        x[i, r : r + 8, c : c + 4] = 255
    return x, y


def write_fake_mnist(root: Path, n_train: int = 1200, n_test: int = 300) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = fake_digits(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return root


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    return write_fake_mnist(tmp_path_factory.mktemp("mnist"))


SMALL_MNIST = [
    "data.val_size=200",
    "data.batch_size=100",
    "data.eval_batch_size=300",
    "data.download=false",
]


@pytest.fixture
def cfg_for(tmp_path, mnist_root):
    """Compose a train config in-process, with the run directory under tmp_path."""

    def make(*overrides: str):
        return compose(
            ["callbacks.progress_bar.refresh_rate=0", f"paths.data_dir={mnist_root}", *overrides],
            output_dir=tmp_path / "run",
        )

    return make


def run_cli(tool: str, *args: str, cwd: Path, env: dict | None = None, check: bool = True):
    """Run an installed console script the way a user would, quietly, and capture its output."""
    full_env = {**os.environ, "LITLAB_LOG_DIR": str(cwd / "logs"), **(env or {})}
    proc = subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_dirs(cwd: Path, name: str) -> list[Path]:
    return sorted((cwd / "logs" / name / "runs").iterdir())


def csv_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of every metric in a run's CSV log."""
    last: dict[str, float] = {}
    with open(run_dir / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            last.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return last


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The final metrics a run recorded in its manifest (any logger, or none)."""
    return json.loads((run_dir / "run.json").read_text())["metrics"]
