"""``hydra/launcher=slurm``: its shape from the trainer and secrets moved to the environment; then
grids on a real single-node SLURM cluster (munge, slurmctld, slurmd from a generated slurm.conf in
a temp dir): a 2-job grid and a DDP job, the launcher's defaults, what it says while jobs wait,
and no secret in any file it writes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from litlab.config import CONFIG_DIR, version_base
from litlab.tracking import manifest
from tests.conftest import BIN
from tests.servers import PG_PASSWORD, postgres, slurm, wait_for
from tests.sweep.conftest import read_csv

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
ARG_SECRET = "Slurm-arg-canary-8e21"
URL_SECRET = "Slurm-url-canary-3b7c"


def test_slurm_launcher_takes_its_shape_from_the_trainer():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.utils import instantiate

    from litlab.sweep.slurm import SlurmLauncher, gpus_per_node

    def launcher_and_trainer(*overrides: str):
        with initialize_config_dir(str(CONFIG_DIR), **version_base()):
            cfg = hydra_compose(
                "train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True
            )
        return cfg.hydra.launcher, cfg.trainer

    launcher, trainer = launcher_and_trainer(
        "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"
    )
    assert launcher._target_ == "hydra_plugins.litlab_launcher.SlurmLauncher"
    # Hydra's own registry (what a real -m uses) knows the class: it skips abstract ones.
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    found = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Launcher)}
    assert launcher._target_ in found
    assert (launcher.nodes, launcher.tasks_per_node, gpus_per_node(trainer)) == (2, 4, 4)
    # What Hydra builds from the class it finds under hydra_plugins is litlab.sweep.slurm's.
    made = instantiate(launcher, submitit_folder="unused")  # the sweep dir needs a running app
    assert type(made) is SlurmLauncher and made.params["tasks_per_node"] == 4
    # Defaults a small node accepts; CPUs sized from the job; GPUs only for a trainer that
    # uses them.
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.gpus_per_node) == (None, 4, None)
    for cpu in ("trainer=cpu", "trainer=ddp_cpu"):
        launcher, trainer = launcher_and_trainer(cpu)
        assert gpus_per_node(trainer) is None
    assert gpus_per_node(launcher_and_trainer("trainer=gpu")[1]) == 1


def test_slurm_cpus_per_task_fit_the_ranks_and_workers_on_a_node():
    from litlab.config import compose_config
    from litlab.sweep.slurm import cpus_per_task

    ddp = compose_config(["experiment=logistic", "trainer=ddp_cpu"])  # 2 ranks, no workers
    two_cpus = [(2, 4096)]
    assert cpus_per_task(ddp, tasks_per_node=2, nodes=two_cpus) == 1  # the 2-CPU node takes it
    folder = compose_config(["experiment=mnist_folder", "data.num_workers=3"])
    assert cpus_per_task(folder, tasks_per_node=1, nodes=[(16, 4096)]) == 4  # rank + workers
    assert cpus_per_task(folder, tasks_per_node=2, nodes=[(4, 4096), (6, 4096)]) == 3
    assert cpus_per_task(folder, tasks_per_node=8, nodes=two_cpus) == 1
    assert cpus_per_task(folder, tasks_per_node=1, nodes=[]) == 4  # sinfo said nothing


def test_sigterm_stops_a_slurm_job_at_once_and_says_it_was_cancelled():
    import signal

    from litlab.sweep import interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), interrupt.cancel_on_sigterm():
        assert not interrupt.cancelled()
        os.kill(os.getpid(), signal.SIGTERM)  # scancel: SIGTERM to every process of the job
        signal.pause()  # never reached: the handler has raised
    with interrupt.cancel_on_sigterm():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            os.kill(os.getpid(), signal.SIGTERM)  # a second one lets the shutdown finish
        assert interrupt.cancelled()
    assert not interrupt.cancelled() and signal.getsignal(signal.SIGTERM) is before


def test_slurm_jobs_get_command_line_secrets_from_the_environment():
    from litlab.sweep.slurm import move_secrets_to_env

    env: dict[str, str] = {}
    moved = move_secrets_to_env(
        ["seed=1", "+db.password=hunter2hunter", "+db.url=postgresql\\://bob\\:pw42@h/db"], env
    )
    assert moved == [
        "seed=1",
        "+db.password=${oc.env:LITLAB_SECRET_0}",
        "+db.url=postgresql\\://bob\\:${oc.env:LITLAB_SECRET_1}@h/db",
    ]
    assert env == {"LITLAB_SECRET_0": "hunter2hunter", "LITLAB_SECRET_1": "pw42"}


@pytest.fixture(scope="module")
def cluster():
    # More CPUs than this machine has: the tests' jobs all run at once; SLURM does not pin
    # them here (task/none).
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


@pytest.mark.slow
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
    assert "--cpus-per-task=1" in text and "--mem=4GB" in text  # no DataLoader workers
    assert "gpus" not in text and "gres" not in text  # trainer=cpu asks for no GPU

    (ddp_sweep,) = (ddp_dir / "logs" / "logistic" / "multiruns").iterdir()
    (script,) = ddp_sweep.glob(".submitit/**/*_submission.sh")
    # Two ranks of one CPU each: a 2-CPU node takes the job.
    assert "--ntasks-per-node=2" in script.read_text()
    assert "--cpus-per-task=1" in script.read_text()
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


def job_dirs(sweep_root: Path, count: int) -> list[Path]:
    """The run dirs of a grid's jobs, once all ``count`` have started fitting."""

    def started() -> list[Path]:
        logs = sorted(sweep_root.glob("*/*/train.log"))
        fitting = [p.parent for p in logs if "fit started" in p.read_text()]
        return fitting if len(fitting) == count else []

    return wait_for(started, "the jobs to start fitting", tries=3000)


@pytest.mark.slow
def test_jobs_that_cannot_start_or_are_cancelled_say_so_in_one_line(tmp_path, cluster):
    env = {**os.environ, **cluster.env}
    pending, running, too_big = (tmp_path / d for d in ("pending", "running", "too_big"))
    for d in (pending, running, too_big):
        d.mkdir()
    # More memory than any node has: sbatch refuses it at once.
    big = submit(too_big, cluster, "trainer=cpu", "logger=csv", "hydra.launcher.mem_gb=64")
    # Long fits (no early stop), cancelled once both have started: wandb's service dies with
    # its job, and the CSV-logged job used to end without a word in the results.
    fit = submit(
        running, cluster, "trainer=cpu", "logger=wandb,csv", "trainer.max_epochs=100000",
        "~callbacks.early_stopping",
    )  # fmt: skip
    # The "short" partition allows 1 minute; the job asks for 10: SLURM holds it forever.
    wait = submit(pending, cluster, "trainer=cpu", "logger=csv", partition="short")

    big_out, _ = big.communicate(timeout=300)
    assert big.returncode == 1
    (said,) = [line for line in big_out.splitlines() if not line.startswith("[")]
    assert said.startswith("litlab: error: SLURM refused the job(s): Memory specification")
    assert "64 GB (mem_gb)" in said and "has 8 CPUs and 16 GB" in said

    seen = []
    for line in wait.stdout:
        seen.append(line)
        if "PartitionTimeLimit" in line:
            break
    said = "".join(seen)
    assert "timeout_min is over the partition's time limit" in said, said
    waiting = said.split("submitted 1 SLURM job(s) ")[1].split()[0]
    subprocess.run(["scancel", waiting], env=env, check=True)

    sweep_root = running / "logs" / "logistic" / "multiruns"
    fitting = job_dirs(sweep_root, 2)
    subprocess.run(["scancel", "--partition=debug"], env=env, check=True)
    fit_out, _ = fit.communicate(timeout=300)
    wait_out, _ = wait.communicate(timeout=300)
    assert fit.returncode == 1 and wait.returncode == 1
    for out in (fit_out, wait_out):
        assert "Traceback" not in out, out
    ends = [line for line in fit_out.splitlines() if "(job " in line]
    assert len(ends) == 2 and all("cancelled by SLURM" in line for line in ends), fit_out
    assert f"SLURM job {waiting} (job 0: " in wait_out and "cancelled by SLURM" in wait_out

    (sweep_dir,) = sweep_root.iterdir()
    table = read_csv(sweep_dir / "results.csv")
    assert sorted((r["logger"], r["status"]) for r in table) == [
        ("csv", "cancelled"), ("wandb", "cancelled"),
    ]  # fmt: skip
    for run_dir in fitting:  # each run's records are kept, marked as such
        run = manifest.read(run_dir)
        assert run["status"] == "interrupted" and "cancelled by SLURM" in run["error"]
        assert (run_dir / "config.yaml").is_file()
    (pending_sweep,) = (pending / "logs" / "logistic" / "multiruns").iterdir()
    assert [r["status"] for r in read_csv(pending_sweep / "results.csv")] == ["cancelled"]


@pytest.mark.slow
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
