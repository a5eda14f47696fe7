"""The console scripts end to end, in subprocesses, as a user runs them."""

import json
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf

from litlab.config import CONFIG_DIR
from tests.conftest import SMALL_MNIST, final_metrics, help_without_torch, run_cli, run_dirs

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
# Every experiment in configs/experiment/, a new one included, without naming any here.
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def quick(experiment: str) -> list[str]:
    """Two short epochs; MNIST experiments on the small stand-in data."""
    text = (CONFIG_DIR / "experiment" / f"{experiment}.yaml").read_text()
    return ["trainer.max_epochs=2", *(SMALL_MNIST if "/data: mnist" in text else [])]


@pytest.fixture
def workdir(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("LITLAB_DATA_DIR", str(mnist_root))
    monkeypatch.setenv("WANDB_MODE", "offline")  # the default logger, even where you are logged in
    return tmp_path


# `make test` trains the default experiment; `make test-all` every one.
DEFAULT_FAST = [e if e == "mnist" else pytest.param(e, marks=pytest.mark.slow) for e in EXPERIMENTS]


@pytest.mark.parametrize("experiment", DEFAULT_FAST)
def test_train_writes_config_checkpoints_and_metrics(workdir, experiment):
    proc = run_cli(
        "litlab-train", f"experiment={experiment}", *quick(experiment), *QUIET, cwd=workdir
    )
    (run_dir,) = run_dirs(workdir, experiment)
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.name == experiment and saved.trainer.max_epochs == 2
    assert "${" not in (run_dir / "config.yaml").read_text()
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    metrics = final_metrics(run_dir)
    assert {"train/loss", "val/loss", "test/loss"} <= set(metrics)
    assert "test/loss" in proc.stdout and str(run_dir) in proc.stdout.replace("\n", "")
    assert "whitelist" not in proc.stderr  # Hydra 1.4 warns without one; 1.5 refuses to run
    # train.log tells the run's phases in order, with litlab's own lines.
    log = [
        line for line in (run_dir / "train.log").read_text().splitlines() if "litlab.run" in line
    ]
    phases = ["config checked", "model built", "fit started", "data ready", "fit ended",
              "testing on", "tested", "run finished"]  # fmt: skip
    said = [next((i for i, line in enumerate(log) if p in line), None) for p in phases]
    assert None not in said and said == sorted(said), log
    assert f"best checkpoint {run_dir}/checkpoints/best.ckpt" in "\n".join(log)


def test_eval_rebuilds_the_run_from_its_checkpoint_alone(workdir, trained):
    run_dir = trained("logistic")
    measured = final_metrics(run_dir)["test/acc"]
    proc = run_cli("litlab-eval", f"ckpt_path={run_dir}/checkpoints/best.ckpt", cwd=workdir)
    assert "test/acc" in proc.stdout and "whitelist" not in proc.stderr
    shown = next(line for line in proc.stdout.splitlines() if "test/acc" in line)
    assert float(shown.split()[-2]) == pytest.approx(measured, abs=1e-4)


@pytest.mark.slow
def test_resume_from_run_dir_continues_in_place(workdir):
    run_cli("litlab-train", "experiment=linear", "trainer.max_epochs=2", *QUIET, cwd=workdir)
    (run_dir,) = run_dirs(workdir, "linear")
    run_cli(
        "litlab-train",
        "experiment=linear",
        "trainer.max_epochs=4",
        f"ckpt_path={run_dir}",
        *QUIET,
        cwd=workdir,
    )
    assert run_dirs(workdir, "linear") == [run_dir]  # no new run dir
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 3


@pytest.mark.slow
def test_ddp_cpu_runs_two_processes_and_writes_once(workdir):
    run_cli(
        "litlab-train",
        "experiment=logistic",
        "trainer=ddp_cpu",
        "trainer.max_epochs=3",
        *QUIET,
        cwd=workdir,
    )
    (run_dir,) = run_dirs(workdir, "logistic")
    assert (run_dir / "config.yaml").is_file()
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.trainer.devices == 2 and saved.trainer.strategy == "ddp"
    ddp_acc = final_metrics(run_dir)["test/acc"]
    # Rank 0 alone wrote the manifest and created the (offline) wandb run.
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert json.loads((run_dir / "run.json").read_text())["hardware"]["world_size"] == 2
    # Each rank saw half of the test set: the synced accuracy is the whole set's.
    proc = run_cli("litlab-eval", f"ckpt_path={run_dir}", cwd=workdir)
    shown = next(line for line in proc.stdout.splitlines() if "test/acc" in line)
    assert float(shown.split()[-2]) == pytest.approx(ddp_acc, abs=1e-4)


@pytest.mark.slow
def test_ddp_cpu_mnist(workdir):
    run_cli(
        "litlab-train", "trainer=ddp_cpu", "trainer.max_epochs=1", *SMALL_MNIST, *QUIET, cwd=workdir
    )
    (run_dir,) = run_dirs(workdir, "mnist")
    assert final_metrics(run_dir)["test/acc"] > 0.5


def test_misspelt_override_fails_with_hydras_message(workdir):
    proc = run_cli("litlab-train", "trainer.max_epoch=3", cwd=workdir, check=False)
    assert proc.returncode != 0
    assert "Could not override 'trainer.max_epoch'" in proc.stderr
    assert not (workdir / "logs").exists() or not list((workdir / "logs").rglob("*.ckpt"))


@pytest.mark.slow  # tests/data/test_mnist.py checks the message in-process
def test_missing_mnist_is_one_clear_message(workdir):
    empty = workdir / "nothing-here"
    proc = run_cli(
        "litlab-train", f"paths.data_dir={empty}", "data.download=false", cwd=workdir, check=False
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"{empty}/MNIST/raw" in proc.stderr and "paths.data_dir" in proc.stderr


@pytest.mark.slow  # in-process: tests/run/test_resume.py's refused resume [experiment]
def test_checkpoint_of_another_experiment_is_refused(workdir, trained):
    run_dir = trained("linear")
    proc = run_cli(
        "litlab-train", "experiment=logistic", f"ckpt_path={run_dir}", cwd=workdir, check=False
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "comes from experiment 'linear'" in proc.stderr and "experiment=linear" in proc.stderr


def test_help_lists_the_config_groups_without_loading_torch(tmp_path):
    out = help_without_torch("litlab-train", "litlab.cli.train", tmp_path)
    experiments = next(line for line in out.splitlines() if line.strip().startswith("experiment "))
    options = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
    assert experiments.split()[1:] == [f"{o}," for o in options[:-1]] + options[-1:]
    assert "trainer " in out and "ddp_cpu" in out


# Cluster and sweep code: what a single command must not load.
SWEEP_CODE = ("litlab.sweep", "optuna", "submitit", "sqlalchemy", "psycopg")


def in_one_process(cwd, *commands: list[str]) -> tuple[str, list[str]]:
    """litlab commands run one after another in a fresh Python, each through its console
    script's ``main``; what they printed, and the sweep or cluster modules loaded by the end.
    ``<run>`` in a command is the run dir the first command made."""
    code = f"""
import importlib, pathlib, sys
run = None
for argv in {[list(c) for c in commands]!r}:
    sys.argv = [a.replace("<run>", str(run)) for a in argv]
    importlib.import_module("litlab.cli." + argv[0].removeprefix("litlab-")).main()
    run = run or next(pathlib.Path("logs").glob("*/runs/*"), None)
print("loaded:", sorted(m for m in sys.modules if m.startswith({SWEEP_CODE!r})))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LITLAB_LOG_DIR": str(cwd / "logs")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, _, loaded = proc.stdout.rpartition("loaded: ")
    return out, json.loads(loaded.replace("'", '"'))


def test_only_a_grid_registers_the_sweep_callbacks(tmp_path):
    single = ["--cfg", "hydra", "experiment=linear"]
    out, loaded = in_one_process(
        tmp_path, ["litlab-train", *single], ["litlab-eval", "--cfg", "hydra", "ckpt_path=x"]
    )
    assert "litlab.sweep" not in out and "redact_secrets" in out
    assert loaded == []  # not even through Hydra's scan of hydra_plugins (the SLURM launcher)
    # -m (or hydra.mode=MULTIRUN, which --cfg accepts) adds the grid's callback; Hydra keeps it
    # out of the job's own overrides.
    out, loaded = in_one_process(tmp_path, ["litlab-train", *single, "hydra.mode=MULTIRUN"])
    assert "_target_: litlab.sweep.grid.SweepResults" in out
    task = out.split("    task:\n")[1].split("\n  job:")[0]
    assert "hydra/callbacks" not in task and "experiment=linear" in task


@pytest.mark.slow
def test_single_commands_load_no_sweep_code(workdir):
    quick = ["trainer.max_epochs=1", "logger=csv", *QUIET]
    _, loaded = in_one_process(
        workdir,
        ["litlab-train", "experiment=linear", *quick],
        ["litlab-eval", "ckpt_path=<run>"],
        ["litlab-predict", "ckpt_path=<run>"],
        ["litlab-export", "ckpt_path=<run>", "format=torchscript"],
    )
    assert loaded == []
    assert (workdir / "logs" / "predict").is_dir() and (workdir / "logs" / "export").is_dir()


def test_a_search_space_is_refused_in_one_line_pointing_at_litlab_sweep(workdir):
    proc = run_cli("litlab-train", "experiment=logistic", "hparams_search=logistic", cwd=workdir,
                   check=False)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "litlab-sweep experiment=logistic hparams_search=logistic" in proc.stderr
    assert not [p for p in (workdir / "logs").rglob("*") if p.is_file()]  # no run left behind
