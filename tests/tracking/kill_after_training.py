"""A callback for tests/tracking/test_wandb_killed.py, which a ``litlab-train`` subprocess loads
(so it lives apart from the test module, whose imports need pytest's paths)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
from lightning.pytorch.callbacks import Callback


class KillAfterTraining(Callback):
    """SIGKILL of the run's own process once training ended, nothing closed or finished; first,
    the pids of its children (wandb's service) go to ``out``, for the test to wait for."""

    def __init__(self, out: str):
        self.out = out

    def on_train_end(self, trainer, pl_module) -> None:
        children = [p.pid for p in psutil.Process().children(recursive=True)]
        Path(self.out).write_text(json.dumps(children))
        os.kill(os.getpid(), signal.SIGKILL)
