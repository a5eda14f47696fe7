"""Tiny trained runs of every experiment, trained once per session and only when a test asks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from litlab.config import compose_config
from tests.conftest import SMALL_MNIST

EXPERIMENTS = {
    "linear": ["experiment=linear", "trainer.max_epochs=2"],
    "sine": ["experiment=sine", "trainer.max_epochs=2"],
    "logistic": ["experiment=logistic", "trainer.max_epochs=2"],
    "mnist": ["experiment=mnist", *SMALL_MNIST],
}
QUIET = ["trainer=cpu", "logger=none", "callbacks.progress_bar.refresh_rate=0"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_root):
    """``trained("mnist")``: the run dir of a tiny trained run of that experiment."""
    from litlab.run import fit_and_test

    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp(f"run-{name}")
            overrides = [*QUIET, "callbacks.figures=null", f"paths.data_dir={mnist_root}"]
            fit_and_test(compose_config([*overrides, *EXPERIMENTS[name]], output_dir=out))
            runs[name] = out
        return runs[name]

    return get


def model_inputs(datamodule, x: torch.Tensor) -> torch.Tensor:
    """``x`` as stored (MNIST: uint8 images) -> what the model takes, via the datamodule's hook."""
    return datamodule.on_after_batch_transfer((x, x), 0)[0]
