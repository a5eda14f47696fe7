"""Sweeps: Hydra grids, Optuna search (resume, failures, pruning), W&B export, DDP in a grid."""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.cli.sweep import run as sweep
from litlab.config import CONFIG_DIR, check_targets, compose_config
from litlab.sweep import optuna_search, space
from litlab.sweep.grid import SweepResults
from litlab.sweep.results import TrialRow, write_results
from litlab.tracking import manifest
from tests.conftest import final_metrics, run_cli
from tests.servers import wait_for

QUIET = ["callbacks.progress_bar.refresh_rate=0"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh directory to run in, with logs/ inside it (as run_cli sets for subprocesses)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def study_of(overrides: list[str]) -> optuna.Study:
    plan = optuna_search.plan(overrides)
    return optuna.load_study(study_name=plan.name, storage=plan.storage_url)


# --- the search space ---------------------------------------------------------------------


def test_search_space_reads_hydra_sweep_syntax():
    params = space.parse_space(
        {
            "model.optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
            "data.batch_size": "choice(32, 64, 128)",
            "model": {"degree": "range(1, 6)", "hidden_size": "tag(int, interval(4, 64))"},
            "trainer.max_epochs": 7,
        }
    )
    by_key = {p.key: p for p in params}
    lr, bs = by_key["model.optimizer.lr"], by_key["data.batch_size"]
    assert (lr.kind, lr.low, lr.high, lr.log, lr.integer) == ("interval", 1e-4, 1e-1, True, False)
    assert bs.values == (32, 64, 128)
    degree, hidden = by_key["model.degree"], by_key["model.hidden_size"]
    assert (degree.low, degree.high, degree.step, degree.integer) == (1, 5, 1, True)
    assert hidden.integer and not hidden.log
    assert by_key["trainer.max_epochs"].values == (7,)

    trial = optuna.create_study().ask()
    values = {p.key: p.suggest(trial) for p in params}
    assert 1e-4 <= values["model.optimizer.lr"] <= 1e-1
    assert values["data.batch_size"] in (32, 64, 128) and values["model.degree"] in range(1, 6)
    assert isinstance(values["model.hidden_size"], int) and 4 <= values["model.hidden_size"] <= 64
    assert trial.distributions["model.optimizer.lr"].log

    with pytest.raises(LitlabError, match="model.lr is given twice"):
        space.parse_space({"model.lr": "choice(1, 2)", "model": {"lr": "choice(3, 4)"}})
    for bad, message in [
        ("interval(1, 0)", "needs low < high"),
        ("tag(log, interval(0, 1))", "positive lower bound"),
        ("tag(fancy, choice(1, 2))", "unknown tag"),
        ("choice(1, 2", "is no Hydra sweep"),
    ]:
        with pytest.raises(LitlabError, match=message):
            space.parse_param("x", bad)


def test_sampled_values_survive_the_trip_through_the_command_line(tmp_path):
    values = {"model.optimizer.lr": 1e-05, "model.hidden_size": None, "seed": 3}
    overrides = ["experiment=logistic", *(space.override(k, v) for k, v in values.items())]
    cfg = compose_config(overrides, output_dir=tmp_path)
    assert cfg.model.optimizer.lr == 1e-05 and cfg.model.hidden_size is None and cfg.seed == 3
    assert space.format_value("a b") == "'a b'" and space.format_value("null") == "'null'"


# --- W&B Sweeps ---------------------------------------------------------------------------


def wandb_draws(param: dict, rng: random.Random) -> list:
    """The values W&B can hand the command for one parameter: both ends and random draws."""
    if "value" in param:
        return [param["value"]]
    if "values" in param:
        return param["values"]
    lo, hi = param["min"], param["max"]
    if param["distribution"] == "int_uniform":
        return [lo, hi, rng.randint(lo, hi)]
    return [lo, hi, rng.uniform(lo, hi)]


@pytest.mark.parametrize("experiment", ["linear", "logistic"])
def test_wandb_sweep_yaml_parses_and_every_draw_composes(workdir, experiment):
    out = workdir / "sweep.yaml"
    sweep([f"experiment={experiment}", f"hparams_search={experiment}", "--wandb", str(out)])
    config = yaml.safe_load(out.read_text())
    space_cfg = OmegaConf.load(CONFIG_DIR / "hparams_search" / f"{experiment}.yaml")
    assert set(config["parameters"]) == set(space_cfg.params)
    assert config["metric"]["goal"] in ("minimize", "maximize") and config["method"] == "bayes"
    command = config["command"]
    assert command[:4] == ["${env}", "${interpreter}", "-m", "litlab.cli.train"]
    assert command[-1] == "${args_no_hyphens}"
    fixed = command[4:-1]
    assert f"experiment={experiment}" in fixed

    rng = random.Random(0)
    draws = {k: wandb_draws(v, rng) for k, v in config["parameters"].items()}
    for i in range(max(len(v) for v in draws.values())):
        chosen = {k: v[i % len(v)] for k, v in draws.items()}
        # What the agent passes: ${args_no_hyphens} is f"{key}={value}" for each parameter.
        args = [f"{k}={v}" for k, v in chosen.items()]
        cfg = compose_config([*fixed, *args], output_dir=workdir / "run")
        check_targets(cfg)
        for key, value in chosen.items():
            assert OmegaConf.select(cfg, key) == pytest.approx(value), key
        assert cfg.logger.wandb.mode == "online"


def test_wandb_export_refuses_a_space_it_cannot_express(workdir):
    with pytest.raises(LitlabError, match="no W&B equivalent"):
        sweep(
            [
                "experiment=logistic",
                "hparams_search=logistic",
                '+hparams_search.params.model.hidden_size="tag(int, log, interval(2, 64))"',
                "--wandb",
                str(workdir / "x.yaml"),
            ]
        )


# --- results tables -----------------------------------------------------------------------


def test_results_table_ranks_and_averages_seeds(tmp_path):
    rows = [
        TrialRow(str(i), ["experiment=logistic", f"lr={lr}", f"seed={s}"], "complete", acc)
        for i, (lr, s, acc) in enumerate(
            [(0.1, 0, 0.90), (0.1, 1, 0.94), (0.01, 0, 0.80), (0.01, 1, 0.84)]
        )
    ]
    rows.append(TrialRow("4", ["experiment=logistic", "lr=9.0", "seed=0"], "failed", error="NaN"))
    md = write_results(rows, tmp_path, "val/acc", "max").read_text()
    table = read_csv(tmp_path / "results.csv")
    assert [r["trial"] for r in table] == ["1", "0", "3", "2", "4"]  # best first, failed last
    assert table[-1]["status"] == "failed" and table[-1]["error"] == "NaN"
    by_config = read_csv(tmp_path / "results_by_config.csv")
    assert [r["lr"] for r in by_config] == ["0.1", "0.01", "9.0"]
    assert float(by_config[0]["val/acc mean"]) == pytest.approx(0.92)
    assert float(by_config[0]["val/acc std"]) == pytest.approx(0.0282843, rel=1e-4)
    assert "litlab-train -m experiment=logistic lr=0.1 seed=0,1" in md
    assert "0.92 ± 0.028" in md


# --- grids: Hydra multirun ----------------------------------------------------------------


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
    table = read_csv(tmp_path / "results.csv")
    assert [(r["trial"], r["status"], r["error"]) for r in table] == [
        ("2", "complete", ""),
        ("0", "complete", ""),
        ("1", "failed", "ValueError: loss is nan"),
        ("3", "failed", "val/loss was nan"),
    ]
    assert (tmp_path / "1" / "sweep_job.json").is_file()
    assert "hunter2hunter" not in (tmp_path / "results.csv").read_text()
    # Hydra's sweeper reports a failed job once, at the end; the table adds no line of its own.
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_grid_multirun_2x2_gets_one_run_dir_per_job_and_a_table(workdir):
    run_cli(
        "litlab-train",
        "-m",
        "experiment=linear",
        "trainer.max_epochs=2",
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
    best = table[0]
    assert float(best["val/loss"]) == pytest.approx(
        final_metrics(Path(best["run_dir"]))["val/loss"]
    )
    md = (sweep_dir / "results.md").read_text()
    assert (
        f"model.optimizer.lr={best['model.optimizer.lr']} data.batch_size={best['data.batch_size']}"
        in md
    )


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
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == ["0", "1"]
    for job, lr in zip(jobs, (0.05, 0.1), strict=True):
        assert (job / "train_ddp_process_1.log").is_file()  # rank 1 ran in this job's dir
        saved = OmegaConf.load(job / "config.yaml")
        assert saved.trainer.devices == 2 and saved.model.optimizer.lr == lr
        assert "test/acc" in final_metrics(job)
    table = read_csv(sweep_dir / "results.csv")
    assert [r["status"] for r in table] == ["complete", "complete"]


def test_slurm_launcher_takes_its_shape_from_the_trainer():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from litlab.sweep.slurm import gpus_per_node

    def launcher_and_trainer(*overrides: str):
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose(
                "train", overrides=["hydra/launcher=slurm", *overrides], return_hydra_config=True
            )
        return cfg.hydra.launcher, cfg.trainer

    launcher, trainer = launcher_and_trainer(
        "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"
    )
    assert launcher._target_ == "hydra_plugins.litlab_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, gpus_per_node(trainer)) == (2, 4, 4)
    # Defaults a small node accepts; GPUs only for a trainer that uses them.
    assert (launcher.cpus_per_task, launcher.mem_gb, launcher.gpus_per_node) == (2, 4, None)
    for cpu in ("trainer=cpu", "trainer=ddp_cpu"):
        launcher, trainer = launcher_and_trainer(cpu)
        assert gpus_per_node(trainer) is None
    assert gpus_per_node(launcher_and_trainer("trainer=gpu")[1]) == 1


def test_slurm_jobs_get_command_line_secrets_from_the_environment():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
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


# --- Optuna -------------------------------------------------------------------------------

LINEAR = ["experiment=linear", "hparams_search=linear", *QUIET]


@pytest.mark.slow
def test_optuna_sweep_finds_better_than_its_first_trial(workdir):
    overrides = [*LINEAR, "trainer.max_epochs=6", "hparams_search.n_trials=6"]
    sweep(overrides)
    study = study_of(overrides)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == 6 and trials[0].state.name == "COMPLETE"
    assert study.best_value < trials[0].value
    # The pruning callback reported val/loss after every epoch of every trial it let finish.
    assert sorted(trials[0].intermediate_values) == list(range(6))
    assert trials[0].intermediate_values[5] == pytest.approx(trials[0].value)

    sweep_dir = optuna_search.plan(overrides).dir
    assert sweep_dir == workdir / "logs" / "linear" / "sweeps" / study.study_name
    table = read_csv(sweep_dir / "results.csv")
    assert table[0]["trial"] == str(study.best_trial.number)
    best_dir = Path(table[0]["run_dir"])
    assert best_dir.parent == sweep_dir / "trials"
    saved = OmegaConf.load(best_dir / "config.yaml")  # a normal run, in its own dir
    assert saved.model.optimizer.lr == study.best_params["model.optimizer.lr"]
    assert saved.paths.output_dir == str(best_dir)
    assert final_metrics(best_dir)["val/loss"] == pytest.approx(study.best_value)
    md = (sweep_dir / "results.md").read_text()
    lr = space.format_value(study.best_params["model.optimizer.lr"])
    assert "litlab-train experiment=linear" in md and "trainer.max_epochs=6" in md and lr in md


@pytest.mark.slow
def test_failing_trial_is_recorded_and_the_sweep_goes_on(workdir):
    overrides = [
        *LINEAR,
        "trainer.max_epochs=2",
        "hparams_search.n_trials=3",
        "hparams_search.sampler._target_=optuna.samplers.BruteForceSampler",
        "~hparams_search.sampler.n_startup_trials",
        "~hparams_search.params",
        # lr=1e30 sends the loss to infinity: litlab raises at the end of the first epoch.
        '+hparams_search.params.model.optimizer.lr="choice(0.05, 1e30, 0.1)"',
    ]
    sweep(overrides)
    trials = study_of(overrides).get_trials(deepcopy=False)
    states = {t.params["model.optimizer.lr"]: t.state.name for t in trials}
    assert states == {0.05: "COMPLETE", 1e30: "FAIL", 0.1: "COMPLETE"}
    failed = next(t for t in trials if t.state.name == "FAIL")
    assert failed.number < max(t.number for t in trials)  # trials ran after it
    assert "NaN or infinite" in failed.user_attrs["error"]
    table = read_csv(optuna_search.plan(overrides).dir / "results.csv")
    assert [r["status"] for r in table] == ["complete", "complete", "failed"]


def _wait_for_complete_trial(db: Path, proc: subprocess.Popen) -> None:
    # Read-only: a second writer creating Optuna's tables would race the sweep's own.
    for _ in range(1200):  # polls, not a time limit on the sweep's speed
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before it was stopped: {proc.returncode}")
        try:
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
                query = "SELECT count(*) FROM trials WHERE state = 'COMPLETE'"
                if con.execute(query).fetchone()[0]:
                    return
        except sqlite3.OperationalError:
            pass  # no database or no tables yet
        time.sleep(0.1)
    raise AssertionError("no trial finished")


@pytest.mark.slow
def test_stopped_study_resumes_where_it_stopped(workdir):
    overrides = [*LINEAR, "trainer.max_epochs=3", "hparams_search.n_trials=4"]
    overrides.append("hparams_search.heartbeat=1")  # the killed trial is seen as dead quickly
    cmd = [sys.executable, "-m", "litlab.sweep", *overrides]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, cwd=workdir, start_new_session=True, **quiet)
    try:
        _wait_for_complete_trial(optuna_search.plan(overrides).dir / "optuna.db", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # a crash: nothing gets to clean up
        proc.wait()
    before = {t.number: t for t in study_of(overrides).get_trials(deepcopy=False)}
    done_before = {n: t for n, t in before.items() if t.state.name == "COMPLETE"}
    assert 1 <= len(done_before) < 4

    subprocess.run(cmd, cwd=workdir, check=True, capture_output=True, timeout=600)
    after = {t.number: t for t in study_of(overrides).get_trials(deepcopy=False)}
    for n, t in done_before.items():  # kept, not rerun
        assert after[n].state.name == "COMPLETE" and after[n].value == t.value
        assert after[n].params == t.params
    new = [t for n, t in after.items() if n not in before]
    assert new and min(t.number for t in new) == max(before) + 1
    finished = [t for t in after.values() if t.state.name in ("COMPLETE", "PRUNED", "FAIL")]
    assert len(finished) >= 4
    for n, t in before.items():
        if t.state.name == "RUNNING":  # killed mid-trial: failed by its missing heartbeat
            assert after[n].state.name == "FAIL"
    table = read_csv(optuna_search.plan(overrides).dir / "results.csv")
    assert {r["trial"] for r in table} == {str(n) for n in after}


def test_workers_seeded_alike_draw_different_points_reproducibly():
    def draws(n_workers: int) -> dict[int, float]:
        storage = optuna.storages.InMemoryStorage()
        studies = []
        for _ in range(n_workers):  # every worker runs the same command: the same seed
            sampler = optuna.samplers.TPESampler(seed=7, n_startup_trials=5)
            optuna_search.seed_per_trial(sampler, 7)
            studies.append(optuna.create_study(storage=storage, study_name="s", sampler=sampler,
                                               load_if_exists=True))  # fmt: skip
        out = {}
        for i in range(6):  # the workers take turns, as they would on a server
            trial = studies[i % n_workers].ask()
            out[trial.number] = trial.suggest_float("x", 0.0, 1.0)
            studies[i % n_workers].tell(trial, out[trial.number])
        return out

    three = draws(3)
    assert len(set(three.values())) == 6  # no two workers drew alike
    assert {n: three[n] for n in range(5)} == {n: draws(1)[n] for n in range(5)}  # seeded by trial


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_marks_the_trial_and_says_how_to_continue(workdir):
    overrides = [*LINEAR, "trainer.max_epochs=2000", "hparams_search.n_trials=3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "litlab.sweep", *overrides], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    run_dir = optuna_search.plan(overrides).dir / "trials" / "0000"

    def training() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended before Ctrl+C: {proc.communicate()}")
        return "hardware" in manifest.read(run_dir)  # built, about to fit or fitting

    wait_for(training, "the first trial to start training", tries=3000)
    time.sleep(1)  # into the epochs
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("litlab-sweep: interrupted") and "Continue with: litlab-sweep " in last
    assert "hparams_search.n_trials=3" in last

    trials = study_of(overrides).get_trials(deepcopy=False)
    first = trials[0]
    assert first.state.name == "FAIL" and "interrupted" in first.user_attrs["error"]
    (again,) = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert again.state.name == "WAITING" and again.system_attrs["fixed_params"] == first.params
    assert manifest.read(run_dir)["status"] == "interrupted"


def test_sweep_refuses_ddp_trials_before_starting(workdir):
    proc = run_cli(
        "litlab-sweep", *LINEAR, "trainer=ddp_cpu", cwd=workdir, check=False
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "litlab-sweep: error:" in proc.stderr and "DDP" in proc.stderr
    assert not (workdir / "logs").exists()  # no study, no trial


def test_train_multirun_with_a_search_space_points_at_litlab_sweep(workdir):
    proc = run_cli(
        "litlab-train", "-m", "experiment=logistic", "hparams_search=logistic", cwd=workdir,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "litlab-sweep experiment=logistic hparams_search=logistic" in proc.stderr
    assert not (workdir / "logs").exists()  # no job ran
