"""ckpt_path=latest: resume the newest run of the experiment that has a checkpoint (issue 22
item 2), without typing its path."""

import sys

import pytest
import torch

from litlab.cli import train
from litlab.config import compose_config
from litlab.config.resolvers import latest_run, run_dir
from litlab.run import fit_and_test

QUIET = ["logger=none", "trainer=cpu", "callbacks.progress_bar.refresh_rate=0"]


def fake_run(runs, name: str, checkpoint: bool):
    (runs / name).mkdir(parents=True)
    (runs / name / "train.log").write_text("")
    if checkpoint:
        (runs / name / "checkpoints").mkdir()
        (runs / name / "checkpoints" / "last.ckpt").write_bytes(b"weights")


def test_the_newest_run_with_a_checkpoint_is_picked(tmp_path):
    runs = tmp_path / "logs" / "linear" / "runs"
    assert latest_run(runs) is None  # no runs folder at all
    fake_run(runs, "2026-01-02_10-00-00_000000", checkpoint=True)
    fake_run(runs, "2026-01-01_23-00-00_000000", checkpoint=True)
    fake_run(runs, "2026-01-03_09-00-00_000000", checkpoint=False)  # refused before it fitted
    assert latest_run(runs) == runs / "2026-01-02_10-00-00_000000"
    # The run dir Hydra gets: that run's; a new one when there is none (the run then refuses).
    assert run_dir("latest", str(runs / "new")) == str(runs / "2026-01-02_10-00-00_000000")
    empty = tmp_path / "logs" / "sine" / "runs" / "new"
    assert run_dir("latest", str(empty)) == str(empty)


def litlab_train(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["litlab-train", *args])
    train.main()


def test_latest_with_no_run_is_refused_in_one_line_and_leaves_nothing(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as err:
        litlab_train(monkeypatch, "experiment=linear", "ckpt_path=latest", *QUIET)
    runs = tmp_path / "logs" / "linear" / "runs"
    assert str(err.value) == (
        f"litlab: error: ckpt_path=latest: no run in {runs} has a checkpoint to resume. Name "
        "the experiment (experiment=<name>), give a run dir, or start a new run."
    )
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # the new run dir is removed


def test_latest_resumes_the_newest_run_in_place(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "logs" / "linear" / "runs"
    for name in ("2026-01-01_00-00-00_000000", "2026-01-02_00-00-00_000000"):
        cfg = compose_config(["experiment=linear", "trainer.max_epochs=1", *QUIET], runs / name)
        fit_and_test(cfg)
    fake_run(runs, "2026-01-03_00-00-00_000000", checkpoint=False)
    capsys.readouterr()
    litlab_train(monkeypatch, "experiment=linear", "ckpt_path=latest", "trainer.max_epochs=2")
    newest = runs / "2026-01-02_00-00-00_000000"
    assert f"litlab: ckpt_path=latest: resuming {newest}\n" in capsys.readouterr().err
    assert len(list(runs.iterdir())) == 3  # no new run dir
    assert torch.load(newest / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    older = runs / "2026-01-01_00-00-00_000000" / "checkpoints" / "last.ckpt"
    assert torch.load(older, weights_only=True)["epoch"] == 0
