"""logger=mlflow on a real local MLflow store, and the ema and lr_monitor callbacks, in a run."""

from __future__ import annotations

import torch

import litlab
from litlab.cli.help import text
from litlab.config import CONFIG_DIR
from litlab.run import fit_and_test


def test_mlflow_ema_and_lr_monitor_in_one_run(cfg_for, tmp_path):
    from mlflow.tracking import MlflowClient

    run = fit_and_test(
        cfg_for(
            "experiment=linear",
            "trainer.max_epochs=3",
            "trainer=cpu",
            "logger=mlflow",
            "callbacks=[default,ema,lr_monitor]",
            "callbacks.ema.decay=0.5",
            "callbacks.figures=null",
        )
    )
    run_dir = tmp_path / "run"
    client = MlflowClient(f"sqlite:///{run_dir}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "linear"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    metrics = logged.data.metrics
    assert {"train/loss", "val/loss", "test/loss", "lr-Adam"} <= set(metrics)
    assert metrics["test/loss"] == run.metrics["test/loss"]
    assert len(client.get_metric_history(logged.info.run_id, "val/loss")) == 3
    assert logged.data.params["model/_target_"] == "litlab.models.PolynomialRegression"

    # EMA: checkpoints hold the averaged weights, which litlab.load gives back.
    ckpt = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    averaged, current = ckpt["state_dict"], ckpt["current_model_state"]
    assert not torch.equal(averaged["net.1.weight"], current["net.1.weight"])
    assert torch.equal(litlab.load(run_dir).state_dict()["net.1.weight"], averaged["net.1.weight"])


def test_the_options_are_in_the_help():
    lines = {
        line.split()[0]: line for line in text(CONFIG_DIR).splitlines() if line.startswith("  ")
    }
    assert "mlflow" in lines["logger"]
    assert "ema" in lines["callbacks"] and "lr_monitor" in lines["callbacks"]
