"""litlab-eval leaves a record: eval.json in its own run dir, and with logger=wandb the
evaluation in the trained run's own wandb run (offline here: a real wandb, no network)."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from litlab import LitlabError
from litlab.config import compose_config
from litlab.run import evaluate, fit_and_test
from tests.conftest import help_without_torch
from tests.wandb_offline import read_offline_run

LOGISTIC = ["experiment=logistic", "trainer.max_epochs=2", "trainer=cpu"]


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def eval_config(tmp_path: Path, *overrides: str):
    return compose_config(list(overrides), output_dir=tmp_path / "eval", config_name="eval")


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # even where you are logged in


def test_eval_json_records_the_training_runs_test_metrics(trained, tmp_path, monkeypatch):
    run_dir = trained("logistic")
    monkeypatch.setenv("MY_API_TOKEN", "s3cret-value-42")
    metrics = evaluate(
        eval_config(tmp_path, f"ckpt_path={run_dir}", "+note=${oc.env:MY_API_TOKEN}")
    )
    text = (tmp_path / "eval" / "eval.json").read_text()
    record = json.loads(text)
    assert record["status"] == "finished" and record["error"] is None
    # Same weights, same data, same precision: the very numbers training measured.
    measured = read(run_dir / "run.json")["metrics"]
    tested = {k: v for k, v in measured.items() if k.startswith("test/")}
    assert record["metrics"] == metrics == pytest.approx(tested, rel=1e-6)
    assert record["trained"]["test_metrics"] == tested
    best = run_dir / "checkpoints" / "best.ckpt"
    assert record["checkpoint"]["path"] == str(best.resolve())
    assert record["checkpoint"]["sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()
    assert record["checkpoint"]["epoch"] == torch.load(best, weights_only=True)["epoch"]
    assert record["trained"]["run_dir"] == str(run_dir.resolve())
    assert record["data"]["config"]["_target_"] == "litlab.data.BlobsDataModule"
    assert {"python", "torch", "lightning", "litlab"} <= set(record["versions"])
    assert record["hardware"]["precision"] == "32-true"
    assert "s3cret-value-42" not in text and record["config"]["note"] == "<redacted>"
    assert "wandb" not in record  # logger=none, the default
    assert not list((tmp_path / "eval").glob(".eval.json.*.tmp"))  # written atomically


def test_with_wandb_offline_the_evaluation_lands_in_the_trained_runs_id(cfg_for, tmp_path, offline):
    run = fit_and_test(cfg_for(*LOGISTIC, "logger=wandb"))
    run_dir = Path(run.cfg.paths.output_dir)
    run_id = read(run_dir / "run.json")["wandb"]["id"]
    metrics = evaluate(eval_config(tmp_path, f"ckpt_path={run_dir}", "logger=wandb"))
    eval_dir = tmp_path / "eval"
    record = read(eval_dir / "eval.json")
    assert record["wandb"]["id"] == run_id and record["wandb"]["resumed"] is True
    # wandb offline "resumes" by writing a new local part of the run under the same id;
    # `wandb sync` of that folder adds it to the trained run.
    (offline_dir,) = (eval_dir / "wandb").glob(f"offline-run-*-{run_id}")
    assert (offline_dir / f"run-{run_id}.wandb").is_file()
    assert record["wandb"]["dir"] == str(offline_dir)
    logged = read_offline_run(eval_dir)
    assert logged.summary["eval/test/acc"] == pytest.approx(metrics["test/acc"])
    assert logged.summary["eval/test/loss"] == pytest.approx(metrics["test/loss"])
    assert not any(k.startswith("test/") for k in logged.summary)  # training's own stay its own
    assert "trainer" not in logged.config  # the trained run keeps its config


def test_a_run_without_wandb_is_evaluated_into_a_new_wandb_run(trained, tmp_path, offline, capsys):
    evaluate(eval_config(tmp_path, f"ckpt_path={trained('logistic')}", "logger=wandb"))
    record = read(tmp_path / "eval" / "eval.json")
    assert record["wandb"]["resumed"] is False
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "new wandb run" in x]
    assert line.startswith("litlab: the trained run has no wandb run")
    logged = read_offline_run(tmp_path / "eval")
    assert "eval/test/acc" in logged.summary and logged.config["trained"]["name"] == "logistic"


def test_a_failed_eval_is_recorded_and_a_refused_one_writes_nothing(trained, tmp_path):
    best = trained("logistic") / "checkpoints" / "best.ckpt"
    # Refused: a bad value stops before the run dir gets anything.
    with pytest.raises(LitlabError, match="eval_batch_size"):
        evaluate(eval_config(tmp_path, f"ckpt_path={best}", "batch_size=0"))
    assert not (tmp_path / "eval").exists()
    # Failed: the weights of a diverged run pass every check, then test to NaN.
    ckpt = torch.load(best, weights_only=True)
    ckpt["state_dict"] = {
        k: torch.full_like(v, float("nan")) for k, v in ckpt["state_dict"].items()
    }
    diverged = tmp_path / "diverged.ckpt"
    torch.save(ckpt, diverged)
    with pytest.raises(LitlabError, match="NaN"):
        evaluate(eval_config(tmp_path, f"ckpt_path={diverged}"))
    record = read(tmp_path / "eval" / "eval.json")
    assert record["status"] == "failed" and record["end_time"]
    assert record["error"].startswith("test/") and "\n" not in record["error"]
    assert record["trained"]["run_dir"] is None  # a checkpoint outside any run dir


def test_help_answers_without_loading_torch(tmp_path):
    out = help_without_torch("litlab-eval", "litlab.cli.eval", tmp_path)
    assert "usage: litlab-eval ckpt_path=" in out
    assert "logger=wandb" in out and "mlflow" in out
