"""A callback for tests/tracking/test_wandb_killed.py, which a ``litlab-train`` subprocess loads
(so it lives apart from the test module, whose imports need pytest's paths)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
from lightning.pytorch.callbacks import Callback


class KillAfterTraining(Callback):
    """SIGKILL of the run's own process two seconds after training ended, nothing closed or
    finished; first, the pids of its children (wandb's service) go to ``out``, for the test to
    wait for. Two seconds: what the run logged is on its way to wandb's service when training
    ends, and the service writes it to disk every 0.1 s (wandb's default: every 15 s)."""

    def __init__(self, out: str):
        self.out = out

    def on_train_end(self, trainer, pl_module) -> None:
        children = [p.pid for p in psutil.Process().children(recursive=True)]
        Path(self.out).write_text(json.dumps(children))
        time.sleep(2)
        os.kill(os.getpid(), signal.SIGKILL)
