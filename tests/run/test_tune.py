"""Lightning's finders before training (``tune=lr``, ``tune=batch_size``): what they find is
what the run trains with, and everything the run records says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.run import fit_and_test
from litlab.run.fit import plan

QUICK = ["logger=none", "trainer=cpu", "trainer.max_epochs=2", "callbacks.figures=null"]


def test_the_lr_finder_s_value_is_what_trains_and_what_is_recorded(cfg_for):
    # The linear task's cosine schedule is built on the optimizer's lr: it must start from the
    # found one, not from the config's.
    run = fit_and_test(cfg_for("experiment=linear", "tune=lr", "tune.lr.num_training=30", *QUICK))
    out = Path(run.cfg.paths.output_dir)
    tuned = json.loads((out / "run.json").read_text())["tuned"]["model.optimizer.lr"]
    found = tuned["found"]
    assert tuned["config"] == 0.3 and found != 0.3 and found > 0
    (optimizer,) = run.trainer.optimizers
    (scheduler,) = run.trainer.lr_scheduler_configs
    assert scheduler.scheduler.base_lrs == [found]
    assert OmegaConf.load(out / "config.yaml").model.optimizer.lr == found
    saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["litlab"]["config"]["model"]["optimizer"]["lr"] == found
    assert (out / "figures" / "lr_find.png").stat().st_size > 0
    assert not list(out.glob(".lr_find*"))  # Lightning's own checkpoint of the test is gone


def test_the_batch_size_finder_stops_at_the_training_set(cfg_for):
    run = fit_and_test(
        cfg_for("experiment=logistic", "tune=batch_size", "data.batch_size=8", *QUICK)
    )
    out = Path(run.cfg.paths.output_dir)
    tuned = json.loads((out / "run.json").read_text())["tuned"]["data.batch_size"]
    assert tuned == {"config": 8, "found": 200}  # 2 x 100 blobs: one batch holds them all
    assert run.datamodule.batch_size == 200 == OmegaConf.load(out / "config.yaml").data.batch_size


@pytest.mark.parametrize(
    "extra", [["trainer=ddp_cpu"], ["train=false", "ckpt_path=somewhere"]], ids=["ddp", "no-train"]
)
def test_a_finder_where_it_cannot_run_is_one_line(extra, cfg_for):
    with pytest.raises(LitlabError, match=r"tune=lr finds values for training on one process"):
        plan(cfg_for("experiment=linear", "tune=lr", *extra))
