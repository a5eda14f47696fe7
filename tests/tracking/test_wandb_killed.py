"""A run killed right after training keeps in its offline wandb files all it logged."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.conftest import run_cli, run_dirs
from tests.wandb_offline import read_offline_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_run_killed_after_training_keeps_its_wandb_history_and_summary(tmp_path):
    pids = tmp_path / "pids.json"
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = run_cli(
        "litlab-train", "experiment=logistic", "trainer=cpu", "trainer.max_epochs=3",
        "callbacks.progress_bar.refresh_rate=0",
        "+callbacks.kill._target_=tests.tracking.kill_after_training.KillAfterTraining",
        f"+callbacks.kill.out={pids}",
        cwd=tmp_path, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # wandb's service outlives the run's process by a few seconds, then quits by itself: what it
    # has not written to the run's .wandb file by then is lost.
    service = [
        psutil.Process(pid) for pid in json.loads(pids.read_text()) if psutil.pid_exists(pid)
    ]
    _, alive = psutil.wait_procs(service, timeout=120)
    assert not alive, f"wandb's service still running after its run was killed: {alive}"
    (run_dir,) = run_dirs(tmp_path, "logistic")
    offline = read_offline_run(run_dir)
    assert [h["epoch"] for h in offline.history if "val/loss" in h] == [0, 1, 2]
    assert [h["epoch"] for h in offline.history if "train/loss" in h] == [0, 1, 2]
    last = [h for h in offline.history if "val/loss" in h][-1]
    assert offline.summary["val/loss"] == pytest.approx(last["val/loss"])
    assert offline.config["litlab"]["parameters"] == {"total": 3, "trainable": 3}
