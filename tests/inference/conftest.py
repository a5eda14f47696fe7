"""What the inference tests share besides the session's tiny trained runs (tests/conftest.py)."""

from __future__ import annotations

import torch

from tests.conftest import TRAINED

EXPERIMENTS = list(TRAINED)  # every experiment `trained` gives a run of


def model_inputs(datamodule, x: torch.Tensor) -> torch.Tensor:
    """``x`` as stored (MNIST: uint8 images) -> what the model takes, via the datamodule's hook."""
    return datamodule.on_after_batch_transfer((x, x), 0)[0]
