"""Parallel sweep workers on a machine with several GPUs: one GPU each, not all on GPU 0.

CI has no GPU: the GPU list is a stand-in (``CUDA_VISIBLE_DEVICES``, or torch's device count
patched), and a trial records the ``CUDA_VISIBLE_DEVICES`` it ran with in run.json."""

from __future__ import annotations

import json

import pytest
import torch

from litlab.sweep import devices
from tests.conftest import run_cli
from tests.sweep.conftest import QUIET


def test_workers_take_the_gpus_in_turn(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    gpus = devices.visible_gpus()
    assert gpus == ["0", "1", "2"]
    assert [devices.worker_env(i, gpus) for i in range(4)] == [
        {"CUDA_VISIBLE_DEVICES": g} for g in ("0", "1", "2", "0")
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, 6")  # a share of the machine: within it
    assert devices.visible_gpus() == ["4", "6"]
    assert devices.worker_env(0, ["4"]) == devices.worker_env(0, []) == {}


@pytest.mark.slow
def test_a_two_worker_sweep_puts_its_trials_on_two_gpus(tmp_path):
    run_cli(
        "litlab-sweep",
        "experiment=logistic",
        "hparams_search=logistic",
        "hparams_search.n_trials=4",
        "hparams_search.n_jobs=2",
        "trainer.max_epochs=60",  # long enough for the second worker to start and take some
        "logger=csv",
        "callbacks.figures=null",
        *QUIET,
        cwd=tmp_path,
        env={"CUDA_VISIBLE_DEVICES": "0,1"},  # hides nothing on a machine without GPUs
    )
    runs = [json.loads(p.read_text()) for p in tmp_path.glob("logs/*/sweeps/*/trials/*/run.json")]
    assert len(runs) == 4
    by_process = {r["hardware"]["cuda_visible_devices"] for r in runs}
    assert by_process == {"0", "1"}
