"""DDP inside a grid job: each job's ranks run that job alone, in its own dir."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.conftest import final_metrics, run_cli
from tests.sweep.conftest import QUIET, read_csv


@pytest.mark.slow
def test_ddp_cpu_grid_runs_each_job_once_in_its_own_dir(workdir):
    # Without litlab's fix, each job's second rank reruns the whole `-m` sweep.
    run_cli(
        "litlab-train",
        "-m",
        "experiment=logistic",
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        "model.optimizer.lr=0.05,0.1",
        *QUIET,
        cwd=workdir,
    )
    logs = workdir / "logs" / "logistic"
    assert not (logs / "runs").exists()
    (sweep_dir,) = (logs / "multiruns").iterdir()
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name != "figures")
    assert [j.name for j in jobs] == ["0", "1"]  # beside the sweep's pictures
    for job, lr in zip(jobs, (0.05, 0.1), strict=True):
        assert (job / "train_ddp_process_1.log").is_file()  # rank 1 ran in this job's dir
        saved = OmegaConf.load(job / "config.yaml")
        assert saved.trainer.devices == 2 and saved.model.optimizer.lr == lr
        assert "test/acc" in final_metrics(job)
    table = read_csv(sweep_dir / "results.csv")
    assert [r["status"] for r in table] == ["complete", "complete"]
