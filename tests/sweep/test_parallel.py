"""A grid's jobs several at a time (``hydra/launcher=parallel``, Hydra's joblib launcher), and
on a machine with several GPUs one GPU per job. CI has no GPU: the GPU list is a stand-in."""

from __future__ import annotations

import json
import threading
from contextlib import ExitStack

import pytest
from omegaconf import OmegaConf

from litlab.config import compose_config
from litlab.sweep import devices
from litlab.sweep.multirun import _own_gpu
from tests.conftest import run_cli
from tests.sweep.conftest import QUIET, read_csv


def test_each_holder_gets_a_gpu_no_other_holds_and_waits_when_all_are_held(tmp_path):
    with ExitStack() as held:
        got = [held.enter_context(devices.claim_gpu(tmp_path, 2)) for _ in range(2)]
        assert sorted(got) == [0, 1]
        third = []
        waiting = threading.Thread(
            target=lambda: third.append(devices.claim_gpu(tmp_path, 2, poll=0.05).__enter__())
        )
        waiting.start()
        waiting.join(0.5)
        assert third == []  # both GPUs are held: it waits
    waiting.join(5)
    assert third in ([0], [1])  # one was let go: it has it now


def test_a_parallel_grid_job_trains_on_a_gpu_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "visible_gpus", lambda: ["0", "1"])  # a stand-in 2-GPU machine
    cfg = compose_config(
        ["experiment=linear", "hydra/launcher=parallel", f"hydra.sweep.dir={tmp_path}"]
    )
    other = OmegaConf.create(OmegaConf.to_container(cfg))
    with _own_gpu(cfg), _own_gpu(other):
        assert sorted([cfg.trainer.devices[0], other.trainer.devices[0]]) == [0, 1]
    cpu = compose_config(["experiment=linear", "hydra/launcher=parallel", "trainer=cpu"])
    with _own_gpu(cpu):
        assert cpu.trainer.devices == 1  # a CPU job takes no GPU


@pytest.mark.slow
def test_a_parallel_grid_runs_its_jobs_at_once(tmp_path):
    run_cli(
        "litlab-train",
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "experiment=linear",
        "model.optimizer.lr=0.01,0.1",
        "trainer.max_epochs=1",
        "logger=csv",
        *QUIET,
        cwd=tmp_path,
    )
    (sweep,) = (tmp_path / "logs" / "linear" / "multiruns").iterdir()
    assert len(read_csv(sweep / "results.csv")) == 2
    records = [json.loads((sweep / job / "run.json").read_text()) for job in ("0", "1")]
    assert [r["status"] for r in records] == ["finished", "finished"]
    # Two worker processes (one would have run both jobs, one after the other).
    assert len({r["host"]["pid"] for r in records}) == 2
