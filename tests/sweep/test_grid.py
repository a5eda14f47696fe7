"""Grids (``litlab-train -m``): each job recorded, the results table, hparams_search refused."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from litlab.cli import train
from litlab.sweep.grid import JobCancelled, SweepResults
from tests.conftest import final_metrics, run_cli
from tests.sweep.conftest import QUIET, read_csv


def test_grid_jobs_record_themselves_and_refresh_the_table(tmp_path, capsys):
    callback = SweepResults()

    def job_ends(num: int, status: JobStatus, value) -> None:
        cfg = OmegaConf.create(
            {
                "hydra": {
                    "mode": RunMode.MULTIRUN,
                    "runtime": {"output_dir": str(tmp_path / str(num))},
                    "job": {"num": num},
                    "overrides": {"task": [f"seed={num}", "+db.password=hunter2hunter"]},
                    "sweep": {"dir": str(tmp_path)},
                },
                "monitor": {"metric": "val/loss", "mode": "min"},
            }
        )
        job_return = JobReturn(overrides=[f"seed={num}"], status=status)
        job_return.return_value = value
        callback.on_job_end(cfg, job_return)

    job_ends(0, JobStatus.COMPLETED, 0.5)
    job_ends(1, JobStatus.FAILED, ValueError("loss is nan\n  more detail"))
    job_ends(2, JobStatus.COMPLETED, 0.25)
    job_ends(3, JobStatus.COMPLETED, float("nan"))
    job_ends(4, JobStatus.FAILED, JobCancelled("cancelled by SLURM (scancel)"))
    table = read_csv(tmp_path / "results.csv")
    assert [(r["trial"], r["status"], r["error"]) for r in table] == [
        ("2", "complete", ""),
        ("0", "complete", ""),
        ("1", "failed", "ValueError: loss is nan"),
        ("3", "failed", "val/loss was nan"),
        ("4", "cancelled", "cancelled by SLURM (scancel)"),
    ]
    assert (tmp_path / "1" / "sweep_job.json").is_file()
    assert "hunter2hunter" not in (tmp_path / "results.csv").read_text()
    # Hydra's sweeper reports a failed job once, at the end; the table adds no line of its own.
    assert capsys.readouterr().err == ""


def test_grid_multirun_2x2_gets_one_run_dir_per_job_and_a_table(workdir):
    # The fast tier's end-to-end grid: one epoch, the CSV logger (quicker to start than wandb).
    run_cli(
        "litlab-train",
        "-m",
        "experiment=linear",
        "trainer.max_epochs=1",
        "logger=csv",
        "model.optimizer.lr=0.01,0.1",
        "data.batch_size=50,100",
        *QUIET,
        cwd=workdir,
    )
    (sweep_dir,) = (workdir / "logs" / "linear" / "multiruns").iterdir()
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        saved = OmegaConf.load(job / "config.yaml")
        assert saved.paths.output_dir == str(job)
        seen.add((saved.model.optimizer.lr, saved.data.batch_size))
        assert "val/loss" in final_metrics(job)
    assert seen == {(0.01, 50), (0.01, 100), (0.1, 50), (0.1, 100)}

    table = read_csv(sweep_dir / "results.csv")
    losses = [float(r["val/loss"]) for r in table]
    assert len(table) == 4 and losses == sorted(losses)
    pictures = sorted(p.name for p in (sweep_dir / "figures").iterdir())
    assert pictures == ["history.png", "importances.png", "parallel_coordinates.png", "slices.png"]
    best = table[0]
    assert float(best["val/loss"]) == pytest.approx(
        final_metrics(Path(best["run_dir"]))["val/loss"]
    )
    md = (sweep_dir / "results.md").read_text()
    assert (
        f"model.optimizer.lr={best['model.optimizer.lr']} data.batch_size={best['data.batch_size']}"
        in md
    )


def test_train_multirun_with_a_search_space_points_at_litlab_sweep(workdir):
    proc = run_cli(
        "litlab-train", "-m", "experiment=logistic", "hparams_search=logistic", cwd=workdir,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "litlab-sweep experiment=logistic hparams_search=logistic" in proc.stderr
    assert not (workdir / "logs").exists()  # no job ran


def test_a_bad_value_in_the_middle_of_a_grid_is_refused_before_any_job_starts(workdir, monkeypatch):
    # In-process, as a user types it: every job's config is composed and checked up front.
    argv = ["litlab-train", "-m", "experiment=linear", "logger=none", "trainer.max_epochs=1"]
    monkeypatch.setattr(sys, "argv", [*argv, "model.optimizer.lr=0.1,-1,0.2", *QUIET])
    with pytest.raises(SystemExit) as exited:
        train.main()
    assert exited.value.code == (
        "litlab: error: job 1 of 3 (model.optimizer.lr=-1) is refused, so none was started: "
        "model.optimizer.lr=-1 is not allowed: a finite number > 0."
    )
    assert not (workdir / "logs").exists()  # not even the sweep dir
