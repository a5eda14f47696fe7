"""Resuming continues the run it names, with its own config, and loses nothing it recorded."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import hydra.utils
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.models import BinaryClassifier
from litlab.run import fit_and_test
from tests.conftest import SMALL_MNIST

QUIET = ["logger=none", "trainer=cpu"]
SLOW = pytest.mark.slow


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run dir with its bytes: what "left as it was" compares."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_train_longer_with_a_one_cycle_schedule(cfg_for, tmp_path):
    """Item 1: the README's "train longer" on MNIST (OneCycleLR) used to step past the end."""
    args = ["experiment=mnist", *SMALL_MNIST, *QUIET, "trainer.precision=32-true"]
    first = fit_and_test(cfg_for(*args, "trainer.max_epochs=1"))
    steps = first.trainer.global_step
    run_dir = tmp_path / "run"
    longer = fit_and_test(cfg_for(*args, f"ckpt_path={run_dir}", "trainer.max_epochs=2"))
    assert longer.trainer.global_step == 2 * steps
    scheduler = longer.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 2 * steps  # rebuilt for the new length
    record = manifest(run_dir)
    assert record["status"] == "finished" and record["metrics"]["test/acc"] > 0
    assert [h["status"] for h in record["history"]] == ["finished"]


def test_resume_takes_the_runs_own_config(cfg_for, tmp_path):
    """Item 2: a resume typed without the first command's overrides keeps them."""
    original = [
        "experiment=logistic",
        *QUIET,
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=2",
        "data.batch_size=50",
    ]
    fit_and_test(cfg_for(*original))
    run_dir = tmp_path / "run"
    # No experiment=, no limit, no batch size: they all come from the run.
    resumed = fit_and_test(cfg_for(f"ckpt_path={run_dir}", "trainer.max_epochs=3", "seed=3"))
    assert resumed.cfg.name == "logistic"
    assert resumed.cfg.trainer.limit_train_batches == 2 and resumed.cfg.data.batch_size == 50
    assert resumed.trainer.global_step == 3 * 2
    assert resumed.cfg.data.seed == 3  # interpolations follow the new overrides
    record = manifest(run_dir)
    assert record["overrides"][-3:] == [f"ckpt_path={run_dir}", "trainer.max_epochs=3", "seed=3"]
    (first,) = record["history"]
    assert first["overrides"][-4:] == original[-4:] and first["status"] == "finished"
    assert record["config"]["trainer"]["max_epochs"] == 3
    assert record["resumed_from"] == str(run_dir / "checkpoints" / "last.ckpt")


class NaNWeights(Callback):
    def on_validation_start(self, trainer, pl_module):
        with torch.no_grad():
            for p in pl_module.parameters():
                p.fill_(float("nan"))


@pytest.mark.parametrize(
    "bad",
    [  # another experiment; another model (its weights do not fit); a bad value
        pytest.param(["experiment=linear"], id="experiment"),
        pytest.param(["experiment=logistic", "model=mlp_classifier"], id="model", marks=SLOW),
        pytest.param(["experiment=logistic", "data.batch_size=0"], id="value", marks=SLOW),
    ],
)
def test_a_refused_resume_leaves_the_run_dir_as_it_was(cfg_for, tmp_path, bad):
    """Item 3: refused resumes used to overwrite run.json, config.yaml and the wandb id."""
    fit_and_test(cfg_for("experiment=logistic", "trainer.max_epochs=1", "trainer=cpu"))
    run_dir = tmp_path / "run"
    before = snapshot(run_dir)
    wandb_id = manifest(run_dir)["wandb"]["id"]
    with pytest.raises(LitlabError) as err:
        fit_and_test(cfg_for(*bad, f"ckpt_path={run_dir}"))
    assert "\n" not in str(err.value)
    assert snapshot(run_dir) == before
    # The next correct resume continues the same wandb run.
    fit_and_test(cfg_for("trainer.max_epochs=2", f"ckpt_path={run_dir}"))
    assert manifest(run_dir)["wandb"]["id"] == wandb_id


def test_a_run_dir_in_use_is_refused_and_a_dead_holder_frees_it(cfg_for, tmp_path):
    """Item 4: two resumes of one run dir at once."""
    fit_and_test(cfg_for("experiment=linear", *QUIET, "trainer.max_epochs=1"))
    run_dir = tmp_path / "run"
    before = snapshot(run_dir)
    # Another process runs it (holds its lock), then is killed with the lock still held.
    code = (
        f"from litlab.run.resume import run_lock as L; held = L({str(run_dir)!r}); held.__enter__()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code + "; print(1, flush=True); input()"],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
    )
    assert holder.stdout.readline().strip() == b"1"
    with pytest.raises(LitlabError, match="is in use"):
        fit_and_test(cfg_for("trainer.max_epochs=2", f"ckpt_path={run_dir}"))
    assert snapshot(run_dir) == before
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    fit_and_test(cfg_for("trainer.max_epochs=2", f"ckpt_path={run_dir}"))
    assert manifest(run_dir)["status"] == "finished"


def test_an_unreadable_last_checkpoint_falls_back_to_the_best(cfg_for, tmp_path, capsys):
    """Item 9: a last.ckpt cut short (a full disk) no longer blocks the resume."""
    args = ["experiment=logistic", *QUIET]
    fit_and_test(cfg_for(*args, "trainer.max_epochs=2"))
    ckpts = tmp_path / "run" / "checkpoints"
    data = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "last.ckpt").write_bytes(data[: len(data) // 3])
    best_epoch = torch.load(ckpts / "best.ckpt", weights_only=True)["epoch"]
    resumed = fit_and_test(cfg_for("trainer.max_epochs=3", f"ckpt_path={tmp_path / 'run'}"))
    err = capsys.readouterr().err
    assert "last.ckpt" in err and "Resuming from best.ckpt instead" in err
    assert resumed.trainer.current_epoch == 3 and best_epoch <= 1
    assert manifest(tmp_path / "run")["resumed_from"] == str(ckpts / "best.ckpt")


def test_one_epoch_run_records_both_checkpoints(cfg_for, tmp_path):
    """Item 11: checkpoints.last was null in every finished one-epoch run."""
    fit_and_test(cfg_for("experiment=logistic", *QUIET, "trainer.max_epochs=1"))
    recorded = manifest(tmp_path / "run")["checkpoints"]
    assert Path(recorded["last"]).name == "last.ckpt" and Path(recorded["last"]).is_file()
    assert Path(recorded["best"]).name == "best.ckpt" and Path(recorded["best"]).is_file()


@pytest.mark.slow
def test_short_run_with_a_one_cycle_schedule(cfg_for):
    """Item 13: 4 steps at pct_start 0.25 made OneCycleLR divide by zero."""
    run = fit_and_test(
        cfg_for(
            "experiment=mnist",
            *SMALL_MNIST,
            *QUIET,
            "trainer.limit_train_batches=4",
            "trainer.max_epochs=1",
            "test=false",
        )
    )
    assert run.trainer.global_step == 4


def test_nan_validation_metrics_fail_the_run(cfg_for, tmp_path):
    """Item 7: NaN validation loss used to end "finished"."""
    cfg = cfg_for("experiment=logistic", *QUIET, "trainer.max_epochs=1")
    with pytest.raises(LitlabError, match=r"val/.* NaN or infinite\. Lower model.optimizer.lr"):
        fit_and_test(cfg, callbacks=[NaNWeights()])
    record = manifest(tmp_path / "run")
    assert record["status"] == "failed" and "NaN or infinite" in record["error"]


def test_csv_log_keeps_earlier_rows_on_resume_and_foreign_columns(cfg_for, tmp_path):
    """Item 14's cause: a CSV writer that did not know the file's columns (another process
    under ddp_spawn, or a resume) rewrote metrics.csv with too few, or deleted it."""
    from tests.conftest import csv_metrics

    fit_and_test(cfg_for("experiment=linear", "logger=csv", "trainer.max_epochs=2"))
    run_dir = tmp_path / "run"
    lines = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    fit_and_test(cfg_for("trainer.max_epochs=3", f"ckpt_path={run_dir}"))
    after = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert after[: len(lines)] == lines and len(after) > len(lines)
    assert csv_metrics(run_dir)["epoch"] == 3


def test_last_ckpt_is_the_last_epoch_when_the_best_is_not(cfg_for, tmp_path):
    """Issue 21 item 1: last.ckpt was rewritten only along with a new best checkpoint."""
    # mode=max on a falling loss: the first epoch stays the best, the last is epoch 3.
    args = ["experiment=logistic", *QUIET, "trainer.max_epochs=3", "trainer.limit_train_batches=2"]
    run = fit_and_test(cfg_for(*args, "monitor.metric=val/loss", "monitor.mode=max"))
    ckpts = tmp_path / "run" / "checkpoints"
    assert torch.load(ckpts / "best.ckpt", weights_only=True)["epoch"] == 0
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 2
    assert manifest(tmp_path / "run")["checkpoints"]["last"] == str(ckpts / "last.ckpt")
    assert run.trainer.checkpoint_callback.best_model_path == str(ckpts / "best.ckpt")


class RatesAtStart(Callback):
    """The learning rates and weights a resumed fit starts its first step with."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not hasattr(self, "rates"):
            optimizer = pl_module.optimizers(use_pl_optimizer=False)
            self.rates = [group["lr"] for group in optimizer.param_groups]
            self.groups = [dict(group, params=None) for group in optimizer.param_groups]


def last_weights(run_dir: Path) -> list[torch.Tensor]:
    return list(torch.load(run_dir / "checkpoints" / "last.ckpt")["state_dict"].values())


def moved(run, before: list[torch.Tensor]) -> float:
    """The largest change of any weight since ``before``."""
    after = run.model.state_dict().values()
    return max((a - b).abs().max().item() for a, b in zip(after, before, strict=True))


def test_an_optimizer_override_on_a_resume_is_applied_and_said(cfg_for, tmp_path, capsys):
    """Issue 21 item 2: run.json said lr 1e-9, the restored optimizer kept lr 0.1."""
    args = ["experiment=logistic", *QUIET, "test=false", "trainer.limit_train_batches=2"]
    fit_and_test(cfg_for(*args, "trainer.max_epochs=2"))
    run_dir = tmp_path / "run"
    before = last_weights(run_dir)
    seen = RatesAtStart()
    change = ["model.optimizer.lr=1e-9", "model.optimizer.weight_decay=0.5"]
    resumed = fit_and_test(
        cfg_for(f"ckpt_path={run_dir}", "trainer.max_epochs=4", *change), callbacks=[seen]
    )
    assert seen.rates == [1e-9] and seen.groups[0]["weight_decay"] == 0.5
    assert moved(resumed, before) < 1e-7  # 4 Adam steps of at most ~lr each
    assert manifest(run_dir)["config"]["model"]["optimizer"]["lr"] == 1e-9
    said = [line for line in capsys.readouterr().err.splitlines() if "resume applies" in line]
    assert said == [
        "litlab: this resume applies model.optimizer.lr=1e-09 (was 0.1), "
        "model.optimizer.weight_decay=0.5 (was unset) to the restored optimizer and schedule."
    ]


class OwnTrainStart(BinaryClassifier):
    """A user's task with its own ``on_train_start``, which does not call ``super()``."""

    def on_train_start(self) -> None:
        self.started = True


def test_a_resume_applies_its_config_to_a_task_with_its_own_on_train_start(
    cfg_for, tmp_path, monkeypatch
):
    """The changes were applied in LitTask.on_train_start: an override without super() kept the
    restored lr 0.1 while run.json said 1e-9."""
    monkeypatch.setenv("LITLAB_TRUSTED_PACKAGES", "tests")  # the resume builds this test's class
    args = ["experiment=logistic", *QUIET, "test=false", "trainer.limit_train_batches=2"]
    own = f"model._target_={__name__}.OwnTrainStart"
    fit_and_test(cfg_for(*args, own, "trainer.max_epochs=2"))
    run_dir = tmp_path / "run"
    seen = RatesAtStart()
    resumed = fit_and_test(
        cfg_for(f"ckpt_path={run_dir}", "trainer.max_epochs=3", "model.optimizer.lr=1e-9"),
        callbacks=[seen],
    )
    assert type(resumed.model) is OwnTrainStart and resumed.model.started
    assert seen.rates == [1e-9]


@pytest.mark.parametrize(
    "change",
    [
        "model.optimizer._target_=torch.optim.SGD",
        "+model.optimizer.amsgrad=true",
        "model.scheduler_interval=epoch",
    ],
)
def test_an_optimizer_change_a_resume_cannot_apply_is_refused(cfg_for, tmp_path, change):
    fit_and_test(cfg_for("experiment=linear", *QUIET, "test=false", "trainer.max_epochs=1"))
    run_dir = tmp_path / "run"
    before = snapshot(run_dir)
    with pytest.raises(LitlabError, match="cannot be applied on a resume") as err:
        fit_and_test(cfg_for(f"ckpt_path={run_dir}", "trainer.max_epochs=2", change))
    assert "\n" not in str(err.value)
    assert snapshot(run_dir) == before


def shipped_schedulers() -> list[str | None]:
    """Every scheduler a model config of litlab's names (None: a constant rate)."""
    from litlab.config import CONFIG_DIR

    found = set()
    for path in (CONFIG_DIR / "model").glob("*.yaml"):
        scheduler = OmegaConf.load(path).get("scheduler") or {}
        found.add(scheduler.get("_target_"))
    return sorted(found, key=str)


# The run-length argument of each shipped schedule, and what else it needs on the linear task.
SCHEDULES = {
    "torch.optim.lr_scheduler.OneCycleLR": ("total_steps", ["+model.scheduler.max_lr=0.3"]),
    "torch.optim.lr_scheduler.CosineAnnealingLR": ("T_max", []),
}


@pytest.mark.parametrize("target", shipped_schedulers())
def test_train_longer_continues_every_shipped_schedule(cfg_for, tmp_path, target):
    """Issue 21 item 3: a cosine run resumed for longer stayed at its final rate, 0."""
    if target is None:
        schedule = ["model.scheduler=null"]
    else:
        schedule = [f"model.scheduler._target_={target}", *SCHEDULES[target][1]]
    args = ["experiment=linear", *QUIET, "test=false", "trainer.limit_train_batches=3", *schedule]
    first = fit_and_test(cfg_for(*args, "trainer.max_epochs=2"))
    steps = first.trainer.global_step
    run_dir = tmp_path / "run"
    before = last_weights(run_dir)
    seen = RatesAtStart()
    longer = fit_and_test(
        cfg_for(*args, f"ckpt_path={run_dir}", "trainer.max_epochs=4"), callbacks=[seen]
    )
    # The rate an uninterrupted run of the new length has at the step reached, from torch.
    reference = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.3)
    if target is not None:
        length, _ = SCHEDULES[target]
        factory = hydra.utils.instantiate(longer.cfg.model.scheduler)
        scheduler = factory(reference, **{length: 2 * steps})
        for _ in range(steps):
            reference.step()
            scheduler.step()
    assert seen.rates == pytest.approx([reference.param_groups[0]["lr"]], rel=1e-9)
    assert seen.rates[0] > 0 and moved(longer, before) > 1e-4
    assert longer.trainer.global_step == 2 * steps


@pytest.mark.parametrize("plus", ["", "+"], ids=["key", "plus-key"])
def test_a_resume_without_its_experiment_is_told_to_add_it(cfg_for, tmp_path, monkeypatch, plus):
    """Issue 21 item 16: Hydra said to add +key, which then failed on MNIST's data module."""
    from litlab.cli import train
    from litlab.cli.common import check_resume_keys

    fit_and_test(cfg_for("experiment=logistic", *QUIET, "test=false", "trainer.max_epochs=1"))
    run_dir = tmp_path / "run"
    before = snapshot(run_dir)
    argv = ["litlab-train", f"ckpt_path={run_dir}", f"{plus}data.num_samples=50"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit:
        train.main()
    assert exit.value.code == (
        "litlab: error: data.num_samples is a key of this run's experiment, logistic, not of "
        "the default one that a resume without experiment= starts from: add experiment=logistic"
        + (" and drop the + before data.num_samples." if plus else ".")
    )
    assert snapshot(run_dir) == before
    # A key the run does not have either is left to Hydra's own message; a good resume passes.
    assert check_resume_keys([f"ckpt_path={run_dir}", "data.nonsense=1"]) is None
    assert check_resume_keys([f"ckpt_path={run_dir}", "trainer.max_epochs=2"]) is None
