"""The task wrapper: resuming, safe checkpoints, and failures that say what to do."""

import logging
import os
import warnings
from pathlib import Path

import pytest
import torch

from litlab import LitlabError
from litlab.models import PolynomialRegression
from litlab.run import fit_and_test
from litlab.run.checkpoints import load, run_config
from tests.conftest import final_metrics, run_cli

EVERY_EPOCH = [
    "callbacks.model_checkpoint.save_top_k=-1",
    "callbacks.model_checkpoint.filename='epoch{epoch}'",
]


def test_resume_after_epoch_one_equals_the_uninterrupted_run(cfg_for, tmp_path):
    # Bit for bit is a CPU promise: GPU kernels may sum in another order from run to run
    # (test_gpu.py checks a GPU resume by its accuracy).
    args = [
        "experiment=logistic",
        "trainer=cpu",
        "model=mlp_classifier",
        "logger=none",
        "trainer.max_epochs=2",
        "data.batch_size=50",
        *EVERY_EPOCH,
    ]
    full = fit_and_test(cfg_for(*args, "test=false"))
    # The checkpoint written at the end of epoch 1 is what a run killed then would leave behind.
    after_one = full.trainer.checkpoint_callback.dirpath + "/epoch0.ckpt"
    resumed = fit_and_test(cfg_for(*args, "test=false", f"ckpt_path={after_one}"))
    for a, b in zip(
        full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert resumed.trainer.current_epoch == 2


def test_checkpoints_load_with_weights_only_and_carry_the_config(cfg_for):
    run = fit_and_test(cfg_for("experiment=linear", "logger=none", "trainer.max_epochs=2"))
    path = run.trainer.checkpoint_callback.best_model_path
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = PolynomialRegression(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    assert model.coefficients == pytest.approx(run.model.coefficients)
    config = run_config(load(Path(path)), Path(path))
    assert config["model"]["_target_"] == "litlab.models.PolynomialRegression"


def test_nan_loss_stops_with_advice(cfg_for):
    cfg = cfg_for(
        "experiment=linear",
        "logger=none",
        "model.optimizer.lr=1e30",
        "model.scheduler=null",
        "trainer.max_epochs=3",
    )
    with pytest.raises(LitlabError, match="NaN or infinite.*Lower model.optimizer.lr"):
        fit_and_test(cfg)


def test_test_only_run_uses_the_given_checkpoint(cfg_for, trained):
    run_dir = trained("linear")
    path = run_dir / "checkpoints" / "best.ckpt"
    tested = fit_and_test(
        cfg_for("experiment=linear", "logger=none", "train=false", f"ckpt_path={path}")
    )
    assert tested.metrics["test/loss"] == pytest.approx(
        final_metrics(run_dir)["test/loss"], rel=1e-5
    )


def test_eval_refuses_a_bad_batch_size_in_one_line(trained, tmp_path):
    from litlab.config import compose_config
    from litlab.run import evaluate

    path = trained("linear") / "checkpoints" / "best.ckpt"
    for bad in ("0", "-3", "abc"):
        cfg = compose_config([f"ckpt_path={path}", f"batch_size={bad}"], tmp_path / "eval", "eval")
        with pytest.raises(LitlabError, match=r"^data.eval_batch_size=\S+ is not allowed"):
            evaluate(cfg)


def test_a_seed_fixes_the_initial_weights(cfg_for):
    """The model is built after seeding: the same seed starts from the same weights."""
    from litlab.run import plan

    args = ["experiment=logistic", "model=mlp_classifier", "logger=none", "trainer=cpu"]
    first, again, other = (plan(cfg_for(*args, f"seed={s}")).model.state_dict() for s in (0, 0, 1))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_a_model_that_is_not_a_littask_is_refused_before_anything_runs(cfg_for, tmp_path):
    cfg = cfg_for("experiment=linear", "logger=none")
    cfg.model = {"_target_": "lightning.pytorch.demos.boring_classes.BoringModel"}
    with pytest.raises(LitlabError, match="BoringModel is not a litlab.models.LitTask"):
        fit_and_test(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["litlab-train", "litlab-sweep"])
def test_lightnings_slurm_hint_and_adverts_are_not_shown(tool, tmp_path):
    """Issue 21 item 20: every run printed Lightning's "`srun` is available" hint where Slurm is
    installed, and a litlogger advert into the terminal and train.log; litlab-sweep's trials
    printed the advert and torch's LeafSpec warning still."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\n")
    (bin_dir / "srun").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    args = ["experiment=linear", "logger=none", "trainer=cpu", "trainer.max_epochs=1"]
    sweep = ["hparams_search=linear", "hparams_search.n_trials=1"] if tool == "litlab-sweep" else []
    proc = run_cli(tool, *args, *sweep, cwd=tmp_path, env=env)
    logs = [p.read_text() for p in (tmp_path / "logs" / "linear").rglob("train.log")]
    assert len(logs) == (tool == "litlab-train")  # a sweep's trials keep no train.log
    for text in (proc.stdout + proc.stderr, *logs):
        assert "`srun` command" not in text and "litlogger" not in text and "Tip:" not in text
        assert "LeafSpec" not in text  # torch's FutureWarning, raised in Lightning's own code
    assert "GPU available" in proc.stdout + proc.stderr  # Lightning's other messages stay


def test_only_lightnings_adverts_and_srun_hint_are_filtered(caplog):
    from lightning.fabric.utilities.rank_zero import rank_zero_info, rank_zero_warn
    from lightning.pytorch.utilities._pytree import _tree_flatten

    from litlab.cli.common import quiet_lightning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning()
        with caplog.at_level(logging.INFO):
            rank_zero_info("💡 Tip: For seamless cloud logging, try installing [litlogger]")
            rank_zero_info("GPU available: False")
            rank_zero_warn("The `srun` command is available on your system but is not used.")
            rank_zero_warn("The dataloader does not have many workers")
            _tree_flatten(1.0)  # a leaf: torch's deprecated LeafSpec, as Lightning's loops do
            leaf_spec = "`isinstance(treespec, LeafSpec)` is deprecated"
            warnings.warn(leaf_spec, DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "The dataloader does not have many workers",
        "`isinstance(treespec, LeafSpec)` is deprecated",  # only torch's FutureWarning is hidden
    ]
    assert [r.getMessage() for r in caplog.records] == ["GPU available: False"]
