"""Callbacks the benchmarks attach to a real ``litlab-train`` run (as ``+callbacks.x._target_``)."""

from __future__ import annotations

import json
import os
import time

import torch
from lightning.pytorch.callbacks import Callback

from benchmarks.common import Clock


class TrainClock(Callback):
    """Training seconds (validation and these probes left out) and test accuracy along the way.

    Every ``every_n_steps`` the clock stops, the official test set is scored, and the clock goes
    on: the trace says when the test accuracy first reached the target.
    """

    def __init__(self, out: str, every_n_steps: int = 100):
        self.out, self.every = out, every_n_steps
        self.clock, self.trace, self.probe_seconds = Clock(), [], 0.0

    def _probe(self, trainer, pl_module) -> None:
        self.clock.stop()
        t0 = time.perf_counter()
        dm = trainer.datamodule
        x, y = dm.splits["test"]
        was_training = pl_module.training
        pl_module.eval()
        correct = 0
        with torch.inference_mode(), trainer.precision_plugin.forward_context():
            for i in range(0, len(x), 2000):
                xb, yb = dm.on_after_batch_transfer((x[i : i + 2000], y[i : i + 2000]), 0)
                correct += int((pl_module(xb).argmax(-1) == yb).sum())
        pl_module.train(was_training)
        self.trace.append((self.clock.total, trainer.global_step, correct / len(x)))
        self.probe_seconds += time.perf_counter() - t0
        self.clock.start()

    def on_train_epoch_start(self, trainer, pl_module):
        self.clock.start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step % self.every == 0:
            self._probe(trainer, pl_module)

    def on_validation_start(self, trainer, pl_module):
        self.clock.stop()

    def on_validation_end(self, trainer, pl_module):
        self.clock.start()

    def on_train_end(self, trainer, pl_module):
        self._probe(trainer, pl_module)
        self.clock.stop()
        with open(self.out, "w") as f:
            json.dump(
                {
                    "trace": self.trace,
                    "train_seconds": self.clock.total,
                    "probe_seconds": self.probe_seconds,
                },
                f,
            )


class FirstStep(Callback):
    """Writes the wall-clock time of the first training step to ``out``, then ends the process."""

    def __init__(self, out: str):
        self.out = out

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        with open(self.out, "w") as f:
            f.write(repr(time.time()))
        os._exit(0)


class FitTestClock(Callback):
    """Appends, for each ``trainer.fit`` and ``trainer.test`` of the process, one line to ``out``:
    ``{"stage": "fit"|"test", "start": t, "end": t}`` in wall-clock seconds (microsecond
    resolution), from the Trainer's ``setup`` hook to its ``teardown``: all of fitting or
    testing but the Trainer's argument checks. A sweep's trials share the file."""

    def __init__(self, out: str):
        self.out = out

    def setup(self, trainer, pl_module, stage):
        self.t0 = time.time()

    def teardown(self, trainer, pl_module, stage):
        with open(self.out, "a") as f:
            f.write(json.dumps({"stage": stage, "start": self.t0, "end": time.time()}) + "\n")
