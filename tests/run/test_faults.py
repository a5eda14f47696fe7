"""Faults at the edges, through the console scripts: a full disk, Ctrl+C, a DDP job that fails
inside a grid, loggers under ddp_spawn, and what litlab-eval prints."""

import json
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import BIN, final_metrics, run_cli, run_dirs

QUIET = ["callbacks.progress_bar.refresh_rate=0", "logger=none"]
FOREVER = ["trainer.max_epochs=100000", "callbacks.early_stopping=null"]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _file_size_limit(limit: int):
    def apply():
        # Over the limit a write fails with EFBIG, as on a full disk (SIGXFSZ would kill instead).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_failed_checkpoint_write_keeps_the_previous_one(workdir):
    """Item 9: a full disk used to leave a truncated last.ckpt, a 0-byte run.json.tmp, a run
    "running" and 151 lines of tracebacks."""
    big = ["experiment=logistic", "model=mlp_classifier", "model.hidden_size=2000", *QUIET]
    run_cli("litlab-train", *big, "trainer.max_epochs=2", cwd=workdir)
    (run_dir,) = run_dirs(workdir, "logistic")
    ckpts = run_dir / "checkpoints"
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    assert min(len(b) for b in before.values()) > 60_000  # over the limit below; run.json is not
    proc = subprocess.run(
        [str(BIN / "litlab-train"), f"ckpt_path={run_dir}", "trainer.max_epochs=3"],
        cwd=workdir,
        capture_output=True,
        text=True,
        preexec_fn=_file_size_limit(60_000),
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert last.startswith(f"litlab: error: Could not write {ckpts}/") and "File too large" in last
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before  # no temp file left
    assert not list(run_dir.glob("*.tmp*")) and not list(run_dir.glob(".*.tmp*"))
    record = manifest(run_dir)
    assert record["status"] == "failed" and "File too large" in record["error"]
    # With room again, the same resume goes on from the intact last.ckpt.
    run_cli("litlab-train", f"ckpt_path={run_dir}", "trainer.max_epochs=3", cwd=workdir)
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 2
    assert manifest(run_dir)["status"] == "finished"


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 120) -> str:
    """SIGINT to ``proc`` (as Ctrl+C sends it) once ``ready()``; returns its stderr."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=120)[1]


def _train(workdir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "litlab-train"), *args],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_stops_the_run_marks_it_and_says_how_to_continue(workdir):
    """Item 10 for litlab-train: exit 130, run.json ``interrupted``, one line to continue."""
    proc = _train(workdir, "experiment=logistic", *FOREVER, *QUIET)
    runs = workdir / "logs" / "logistic" / "runs"
    stderr = _interrupt_when(proc, lambda: list(runs.glob("*/checkpoints/last.ckpt")))
    (run_dir,) = run_dirs(workdir, "logistic")
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1] == (
        f"litlab: interrupted; {run_dir} is recorded as such. "
        f"Continue it with: litlab-train ckpt_path={run_dir}"
    )
    assert manifest(run_dir)["status"] == "interrupted"
    # The command it prints continues the run (here only to one epoch more than it has).
    epoch = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    run_cli("litlab-train", f"ckpt_path={run_dir}", f"trainer.max_epochs={epoch + 2}", cwd=workdir)
    record = manifest(run_dir)
    assert record["status"] == "finished" and record["history"][-1]["status"] == "interrupted"


@pytest.mark.slow
def test_ctrl_c_stops_a_grid(workdir):
    """Item 10 for grids: the interrupted job is marked, the next one never starts."""
    proc = _train(workdir, "-m", "experiment=logistic", "seed=0,1", *FOREVER, *QUIET)
    multiruns = workdir / "logs" / "logistic" / "multiruns"
    stderr = _interrupt_when(proc, lambda: list(multiruns.glob("*/0/checkpoints/last.ckpt")))
    (sweep,) = multiruns.iterdir()
    assert proc.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith(f"litlab: interrupted; {sweep / '0'} ")
    assert manifest(sweep / "0")["status"] == "interrupted"
    assert not (sweep / "1").exists()


@pytest.mark.slow
def test_a_failing_ddp_job_fails_alone_in_its_grid(workdir):
    """Item 15: a DDP job whose rank fails used to kill the whole sweep, leaving the next job
    "running" with a rank waiting forever."""
    proc = run_cli(
        "litlab-train",
        "-m",
        "experiment=logistic",
        "trainer=ddp_cpu",
        "trainer.max_epochs=2",
        "trainer.limit_val_batches=0.5,1.0",  # 0.5 of one validation batch is none: job 0 fails
        *QUIET,
        cwd=workdir,
        check=False,
    )
    (sweep,) = (workdir / "logs" / "logistic" / "multiruns").iterdir()
    assert proc.returncode != 0  # Hydra reports the failed job at the end
    assert manifest(sweep / "0")["status"] == "failed"
    assert manifest(sweep / "1")["status"] == "finished"
    results = (sweep / "results.md").read_text()
    assert "1 complete" in results and "1 failed" in results


@pytest.mark.slow
def test_csv_logger_under_ddp_spawn(workdir):
    """Item 14: the CSV logger failed under ddp_spawn ("dict contains fields not in
    fieldnames")."""
    run_cli(
        "litlab-train",
        "experiment=logistic",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp_spawn",
        "logger=csv",
        "trainer.max_epochs=1",
        "callbacks.progress_bar.refresh_rate=0",
        cwd=workdir,
    )
    (run_dir,) = run_dirs(workdir, "logistic")
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/acc", "val/acc", "test/acc"} <= set(header)
    assert manifest(run_dir)["status"] == "finished"


@pytest.mark.slow
def test_eval_matches_training_precision_and_prints_the_checkpoint_on_one_line(workdir):
    """Items 17 and 12: eval tested a bf16 run in fp32; it labelled the checkpoint "run dir:",
    and a long path wrapped at 80 columns when piped."""
    deep = workdir / ("a-rather-long-folder-name-" * 3)
    deep.mkdir()
    args = ["experiment=logistic", "trainer.max_epochs=3", "trainer.precision=bf16-mixed"]
    run_cli("litlab-train", *args, *QUIET, cwd=deep, env={"LITLAB_LOG_DIR": str(deep / "logs")})
    (run_dir,) = run_dirs(deep, "logistic")
    trained = final_metrics(run_dir)
    proc = run_cli("litlab-eval", f"ckpt_path={run_dir}", cwd=workdir)
    shown = {
        line.split()[1]: float(line.split()[-2])
        for line in proc.stdout.splitlines()
        if line.startswith("│ test/")
    }
    assert shown["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-5)
    assert shown["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)
    best = run_dir / "checkpoints" / "best.ckpt"
    assert len(str(best)) > 80 and f"checkpoint: {best}" in proc.stdout.splitlines()
    assert "run dir:" not in proc.stdout
