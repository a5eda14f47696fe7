"""Grids through ``hydra/launcher=slurm`` on a real single-node SLURM cluster (munge, slurmctld,
slurmd from a generated slurm.conf in a temp dir): a 2-job grid and a DDP job, the launcher's
defaults, what it says while jobs wait, and no secret in any file it writes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from litlab.tracking import manifest
from tests.conftest import BIN
from tests.servers import PG_PASSWORD, postgres, slurm, wait_for

pytestmark = pytest.mark.slow
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
ARG_SECRET = "Slurm-arg-canary-8e21"
URL_SECRET = "Slurm-url-canary-3b7c"


@pytest.fixture(scope="module")
def cluster():
    # More CPUs than this machine has: the grid's two jobs and the DDP job's two ranks (two
    # CPUs each by default) all run at once; SLURM does not pin them here (task/none).
    with slurm(cpus=8, mem_mb=16384) as c:
        yield c


def submit(cwd: Path, cluster, *overrides: str, partition: str = "debug") -> subprocess.Popen:
    cmd = [
        str(BIN / "litlab-train"), "-m", "hydra/launcher=slurm",
        f"hydra.launcher.partition={partition}", "hydra.launcher.timeout_min=10",
        "experiment=logistic", "trainer.max_epochs=2", "callbacks.progress_bar.refresh_rate=0",
        *overrides,
    ]  # fmt: skip
    env = {**os.environ, **cluster.env, "LITLAB_LOG_DIR": str(cwd / "logs")}
    env["WANDB_MODE"] = "offline"
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_grid_and_ddp_jobs_run_as_slurm_jobs_without_writing_secrets(tmp_path, cluster):
    grid_dir, ddp_dir = tmp_path / "grid", tmp_path / "ddp"
    grid_dir.mkdir(), ddp_dir.mkdir()
    grid = submit(
        grid_dir, cluster, "trainer=cpu", "logger=wandb", "model.optimizer.lr=0.03,0.1",
        f"+db.password={ARG_SECRET}", f"+db.url=postgresql://bob:{URL_SECRET}@db.example/optuna",
    )  # fmt: skip
    ddp = submit(ddp_dir, cluster, "trainer=ddp_cpu", "logger=csv")
    grid_out, _ = grid.communicate(timeout=600)
    ddp_out, _ = ddp.communicate(timeout=600)
    logs = cluster.log("slurmctld.log") + cluster.log("slurmd.log")
    assert grid.returncode == 0, f"{grid_out}\n{logs}"
    assert ddp.returncode == 0, f"{ddp_out}\n{logs}"

    # While the jobs waited, litlab said which, where their logs go, and their states.
    assert "submitted 2 SLURM job(s)" in grid_out and "_log.out" in grid_out
    assert "RUNNING" in grid_out

    (sweep_dir,) = (grid_dir / "logs" / "logistic" / "multiruns").iterdir()
    jobs = sorted(p for p in sweep_dir.iterdir() if p.name.isdigit())
    assert [j.name for j in jobs] == ["0", "1"]
    for job in jobs:
        run = manifest.read(job)
        assert run["status"] == "finished", run.get("error")
        assert run["command"][:3] == ["litlab-train", "-m", "hydra/launcher=slurm"]
        assert "+db.password=<redacted>" in run["command"]
        assert "+db.url=postgresql://bob:<redacted>@db.example/optuna" in run["command"]
        assert "SLURM_JOB_ID" not in run["command"]
    table = (sweep_dir / "results.csv").read_text().splitlines()
    assert len(table) == 3 and all(",complete," in row for row in table[1:])
    scripts = sorted(sweep_dir.glob(".submitit/**/*_submission.sh"))
    assert scripts
    text = "".join(p.read_text() for p in scripts)
    assert "--cpus-per-task=2" in text and "--mem=4GB" in text
    assert "gpus" not in text and "gres" not in text  # trainer=cpu asks for no GPU

    (ddp_sweep,) = (ddp_dir / "logs" / "logistic" / "multiruns").iterdir()
    run = manifest.read(ddp_sweep / "0")
    assert run["status"] == "finished", run.get("error")
    assert run["hardware"]["world_size"] == 2 and run["hardware"]["strategy"] == "DDPStrategy"
    job = json.loads((ddp_sweep / "0" / "sweep_job.json").read_text())
    assert job["status"] == "complete"

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 30
    for path in files:  # run dirs, .hydra, multirun.yaml, wandb runs, submitit's pickles
        data = path.read_bytes()
        assert ARG_SECRET.encode() not in data and URL_SECRET.encode() not in data, path
    assert ARG_SECRET not in grid_out and URL_SECRET not in grid_out


def test_a_job_that_cannot_start_says_why_and_a_cancelled_one_fails_in_one_line(tmp_path, cluster):
    # The "short" partition allows 1 minute; the job asks for 10: SLURM holds it forever.
    proc = submit(tmp_path, cluster, "trainer=cpu", "logger=csv", partition="short")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "PartitionTimeLimit" in line:
            break
    said = "".join(seen)
    assert "timeout_min is over the partition's time limit" in said, said
    job_id = said.split("submitted 1 SLURM job(s) ")[1].split()[0]
    subprocess.run(["scancel", job_id], env={**os.environ, **cluster.env}, check=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert f"SLURM job {job_id} left the queue without a result" in out
    assert "Traceback" not in out


def test_sweep_workers_submitted_with_sbatch_share_one_postgres_study(tmp_path, cluster):
    import optuna

    from litlab.sweep import optuna_search

    with postgres() as pg:
        url = pg.create_database("sbatch_workers")
        overrides = [
            "experiment=logistic", "hparams_search=logistic", "trainer=cpu", "logger=csv",
            "trainer.max_epochs=1", "hparams_search.n_trials=4",
            "callbacks.progress_bar.refresh_rate=0", f"hparams_search.storage={url}",
        ]  # fmt: skip
        command = shlex.join([sys.executable, "-m", "litlab.sweep", *overrides])
        env = {**os.environ, **cluster.env, "LITLAB_LOG_DIR": str(tmp_path / "logs")}
        ids = []
        for _ in range(2):  # two workers at once, as many users start them
            out = subprocess.run(
                ["sbatch", "--parsable", f"--chdir={tmp_path}", "--cpus-per-task=1", "--mem=2G",
                 f"--output={tmp_path}/worker-%j.out", "--wrap", command],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            ids.append(out.stdout.strip())
        queue = ["squeue", "-h", "-j", ",".join(ids)]
        wait_for(
            lambda: not subprocess.run(queue, env=env, capture_output=True, text=True).stdout,
            "the workers to finish", tries=3000,
        )  # fmt: skip
        outputs = [(tmp_path / f"worker-{i}.out").read_text() for i in ids]
        plan = optuna_search.plan(overrides)
        trials = optuna.load_study(study_name=plan.name, storage=url).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4, "\n".join(outputs)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4
    for out in outputs:  # each worker's SLURM .out starts with the study, password masked
        assert "postgresql://litlab:<redacted>@127.0.0.1" in out.splitlines()[0]
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert PG_PASSWORD.encode() not in path.read_bytes(), path
