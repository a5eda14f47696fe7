"""``ckpt_path=latest`` in the commands that use a trained run (litlab-eval, -predict, -export):
the newest run with a checkpoint of the experiment ``experiment=`` names, in the folder
litlab-train writes it to; its best.ckpt, as for a run dir given by path."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from litlab.config import CONFIG_DIR

CPU = ["trainer=cpu"]


@pytest.fixture
def two_runs(command, tmp_path):
    """Two linear runs trained by litlab-train (other seeds: other weights), older first, and a
    newer run dir without a checkpoint (a run refused before it fitted), which is passed over."""
    for seed in (1, 2):
        quick = ["experiment=linear", "trainer.max_epochs=1", "logger=csv", f"seed={seed}", *CPU]
        assert command("litlab-train", *quick, "callbacks.progress_bar.refresh_rate=0") is None
    runs = tmp_path / "logs" / "linear" / "runs"
    older, newer = sorted(runs.iterdir())
    (runs / "9999-01-01_00-00-00_000000").mkdir()  # sorts last: the newest dir
    return older, newer


def test_eval_predict_and_export_take_the_newest_runs_best_checkpoint(
    two_runs, command, tmp_path, capsys
):
    older, newer = two_runs
    best = newer / "checkpoints" / "best.ckpt"
    capsys.readouterr()
    assert command("litlab-eval", "experiment=linear", "ckpt_path=latest", *CPU) is None
    assert capsys.readouterr().err.count(f"litlab: ckpt_path=latest: using {newer}\n") == 1
    (record,) = (tmp_path / "logs" / "eval" / "runs").glob("*/eval.json")
    record = json.loads(record.read_text())
    assert record["checkpoint"]["path"] == str(best.resolve())
    assert record["trained"]["run_dir"] == str(newer.resolve())
    assert record["config"]["ckpt_path"] == str(newer)  # what it used, not "latest"

    out = tmp_path / "out"
    latest = ["experiment=linear", "ckpt_path=latest"]
    assert command("litlab-export", *latest, "format=torchscript", f"output={out}/m.ts") is None
    assert f"litlab: ckpt_path=latest: using {newer}\n" in capsys.readouterr().err
    assert json.loads((out / "m.ts.json").read_text())["checkpoint"] == str(best)

    # Predictions are the newer run's own: the same as naming it, not those of the older run.
    assert command("litlab-predict", *latest, f"output={out}/latest.csv", *CPU) is None
    assert f"litlab: ckpt_path=latest: using {newer}\n" in capsys.readouterr().err
    for run in (older, newer):
        named = [f"ckpt_path={run}", f"output={out}/{run.name}.csv", *CPU]
        assert command("litlab-predict", *named) is None
    predicted = (out / "latest.csv").read_text()
    assert predicted == (out / f"{newer.name}.csv").read_text()
    assert predicted != (out / f"{older.name}.csv").read_text()


@pytest.mark.parametrize(
    "tool, more", [("eval", []), ("predict", []), ("export", ["format=torchscript"])]
)
def test_latest_without_a_run_is_one_line_naming_the_runs_folder(command, tmp_path, tool, more):
    end = command(f"litlab-{tool}", "experiment=linear", "ckpt_path=latest", *more)
    runs = tmp_path / "logs" / "linear" / "runs"
    assert end.code == (
        f"litlab: error: ckpt_path=latest: no run in {runs} has a checkpoint. Name the "
        "experiment (experiment=<name>), give a run dir, or train one first (litlab-train "
        "experiment=<name>)."
    )
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # its run dir is removed
    # No experiment=: litlab-train's default one, whose runs are where that writes them.
    (default,) = [d.experiment for d in OmegaConf.load(CONFIG_DIR / "train.yaml").defaults
                  if "experiment" in d]  # fmt: skip
    end = command(f"litlab-{tool}", "ckpt_path=latest", *more)
    assert f" no run in {tmp_path / 'logs' / default / 'runs'} has " in end.code


@pytest.mark.parametrize("tool", ["eval", "predict", "export"])
def test_experiment_with_another_ckpt_path_is_refused_not_ignored(command, tmp_path, tool):
    """A run dir brings its own experiment: experiment= beside it was accepted and ignored."""
    for given in ([f"ckpt_path={tmp_path}"], []):
        end = command(f"litlab-{tool}", "experiment=linear", *given)
        assert end.code == (
            "litlab: error: experiment=linear is read with ckpt_path=latest only (the newest "
            "run of that experiment); a run dir or checkpoint brings its own: drop it, or add "
            "ckpt_path=latest."
        )
