"""Optuna search (``litlab-sweep``): the study loop, failures, resuming, workers, Ctrl+C."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.cli.sweep import main as sweep_main
from litlab.cli.sweep import run as sweep
from litlab.config import CONFIG_DIR
from litlab.sweep import optuna_search, space
from litlab.tracking import manifest
from litlab.tracking.compare import read_runs
from tests.conftest import final_metrics, run_cli
from tests.servers import wait_for
from tests.sweep.conftest import LINEAR, QUIET, read_csv, study_of
from tests.wandb_offline import read_offline_run


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
    # Its pictures, in the sweep dir and as one more wandb run of the study's group.
    names = ["history", "importances", "parallel_coordinates", "slices"]
    assert sorted(p.stem for p in (sweep_dir / "figures").glob("*.png")) == names
    assert len(list(sweep_dir.glob("wandb/offline-run-*"))) == 1


def test_failing_trial_is_recorded_and_the_sweep_goes_on(workdir, caplog):
    # The fast tier's end-to-end Optuna sweep: three short trials in this process.
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
    # The terminal gets Optuna's one line for it, without a traceback: litlab's error says enough.
    (warned,) = [r for r in caplog.records if "NaN or infinite" in r.getMessage()]
    assert warned.name == "optuna.study._optimize" and not warned.exc_info
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


def test_sweep_refuses_a_bad_wandb_mode_before_starting(workdir, monkeypatch):
    # Each trial refused it in turn, and the sweep ended "2 trials: 0 complete, 2 failed".
    monkeypatch.setenv("WANDB_MODE", "ofline")
    with pytest.raises(LitlabError, match=r"^WANDB_MODE='ofline' is not a wandb mode \(online"):
        sweep([*LINEAR, "hparams_search.n_trials=2"])
    assert not (workdir / "logs").exists()  # no study, no trial


def test_pruned_trial_says_pruned_in_its_run_json_and_everywhere_else(workdir):
    # A pruner that prunes every trial at its first report: val/loss is never below 0.
    overrides = [
        *LINEAR,
        "trainer.max_epochs=2",
        "hparams_search.n_trials=1",
        "hparams_search.pruner._target_=optuna.pruners.ThresholdPruner",
        "~hparams_search.pruner.n_startup_trials",
        "hparams_search.pruner.n_warmup_steps=0",
        "+hparams_search.pruner.upper=0.0",
    ]
    sweep(overrides)
    (trial,) = study_of(overrides).get_trials(deepcopy=False)
    assert trial.state.name == "PRUNED"
    record = manifest.read(trial.user_attrs["run_dir"])
    assert record["status"] == "pruned" and "pruned at epoch 0" in record["error"]
    offline = read_offline_run(Path(trial.user_attrs["run_dir"]))  # wandb: pruned, not failed
    assert offline.exit_code == 0 and offline.summary["status"] == "pruned"
    sweep_dir = optuna_search.plan(overrides).dir
    assert [r["status"] for r in read_csv(sweep_dir / "results.csv")] == ["pruned"]
    assert [r["status"] for r in read_runs([sweep_dir])] == ["pruned"]  # litlab-compare's rows


def _shared(*overrides: str, storage: Path) -> list[str]:
    return [*overrides, *QUIET, "hparams_search.study_name=shared",
            f"hparams_search.storage=sqlite:///{storage}"]  # fmt: skip


def test_a_study_refuses_a_sweep_that_searches_something_else(workdir):
    db = workdir / "shared.db"
    logistic = _shared("experiment=logistic", "hparams_search=logistic", storage=db)
    optuna_search.open_study(optuna_search.plan(logistic))
    optuna_search.open_study(optuna_search.plan([*logistic, "hparams_search.n_trials=50"]))
    linear = optuna_search.plan(_shared("experiment=linear", "hparams_search=linear", storage=db))
    with pytest.raises(LitlabError) as refused:
        optuna_search.open_study(linear)
    message = str(refused.value)
    assert message.startswith("study shared (sqlite:///") and len(message.splitlines()) == 1
    assert "metric val/acc there, val/loss here" in message
    assert "direction maximize there, minimize here" in message
    assert (
        "data.batch_size choice(20, 50, 100, 200) there, choice(25, 50, 100, 200) here" in message
    )
    assert "model.optimizer.lr" not in message  # searched alike by both

    # Through the command: one line, and not a trial run.
    with pytest.raises(SystemExit) as stopped:
        sweep_main(_shared("experiment=logistic", "hparams_search=logistic", storage=db)
                   + ["hparams_search.direction=min"])  # fmt: skip
    assert str(stopped.value.code).startswith("litlab-sweep: error: study shared (")
    assert not optuna.load_study(study_name="shared", storage=f"sqlite:///{db}").trials


def test_a_study_made_before_litlab_recorded_its_search_is_checked_on_its_direction(workdir):
    db = workdir / "old.db"
    optuna.create_study(study_name="shared", storage=f"sqlite:///{db}", direction="maximize")
    with pytest.raises(LitlabError, match="direction maximize there, minimize here"):
        optuna_search.open_study(optuna_search.plan(_shared(*LINEAR, storage=db)))
    logistic = optuna_search.plan(_shared("experiment=logistic", "hparams_search=logistic",
                                          storage=db))  # fmt: skip
    study = optuna_search.open_study(logistic)  # adopted: its search recorded from now on
    assert study.user_attrs[optuna_search.SEARCH_ATTR]["metric"] == "val/acc"


def test_an_error_inside_a_trial_reaches_the_results_as_its_own_line(workdir):
    # A study from before litlab recorded its search, holding a trial of another space: the
    # new trial's batch size cannot join it, and Optuna says why.
    overrides = [*_shared(*LINEAR, storage=workdir / "old.db"), "hparams_search.n_trials=2"]
    old = optuna.create_study(
        study_name="shared", storage=optuna_search.plan(overrides).storage_url
    )
    choices = optuna.distributions.CategoricalDistribution((1, 2))
    old.add_trial(optuna.trial.create_trial(
        params={"data.batch_size": 1}, distributions={"data.batch_size": choices}, value=1.0
    ))  # fmt: skip
    sweep(overrides)
    (row,) = [r for r in read_csv(optuna_search.plan(overrides).dir / "results.csv") if r["error"]]
    assert row["status"] == "failed"
    assert (
        row["error"] == "ValueError: CategoricalDistribution does not support dynamic value space."
    )


def test_a_misspelt_key_ends_litlab_sweep_in_one_line(workdir):
    with pytest.raises(SystemExit) as stopped:
        sweep_main([*LINEAR, "model.optimizr.lr=0.1"])
    message = str(stopped.value.code)
    assert message == (
        "litlab-sweep: error: Could not override 'model.optimizr.lr'. Key 'optimizr' is not in "
        "struct. To append to your config use +model.optimizr.lr=0.1"
    )
    with pytest.raises(SystemExit) as stopped:
        sweep_main(["experiment=nosuch", "hparams_search=linear"])
    assert str(stopped.value.code).endswith("Available options in 'experiment': " + ", ".join(
        sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
    ))  # fmt: skip
    assert not (workdir / "logs").exists()


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("n_trials=abc", "hparams_search.n_trials='abc' is not allowed: an integer >= 1."),
        ("n_jobs=0", "hparams_search.n_jobs=0 is not allowed: an integer >= 1."),
        ("outage_limit=-5", "hparams_search.outage_limit=-5 is not allowed: a finite number > 0."),
    ],
)
def test_a_bad_search_setting_is_one_line(setting, says, workdir):
    with pytest.raises(SystemExit) as stopped:
        sweep_main([*LINEAR, f"hparams_search.{setting}"])
    assert stopped.value.code == f"litlab-sweep: error: {says}"
    assert not (workdir / "logs").exists()


@pytest.mark.slow
def test_a_cross_validated_trial_is_the_mean_of_its_folds(workdir):
    overrides = [
        "experiment=logistic",
        "hparams_search=logistic",
        "hparams_search.n_trials=2",
        "trainer.max_epochs=2",
        "logger=csv",
        "callbacks.figures=null",
        "data.num_folds=3",
        *QUIET,
    ]
    sweep(overrides)
    study = study_of(overrides)
    for trial in study.get_trials(deepcopy=False):
        assert trial.state.name == "COMPLETE"
        trial_dir = Path(trial.user_attrs["run_dir"])
        folds = [final_metrics(trial_dir / f"fold{i}") for i in range(3)]
        assert [
            OmegaConf.load(trial_dir / f"fold{i}" / "config.yaml").data.fold for i in range(3)
        ] == [0, 1, 2]
        assert trial.value == pytest.approx(sum(f["val/acc"] for f in folds) / 3)
        assert sorted(trial.intermediate_values) == [0, 1, 2]  # the mean so far, after each fold


def test_after_a_trial_its_cycles_are_freed_and_the_survivors_frozen():
    """The per-trial collection (in place of Optuna's gc_after_trial): what a trial left in a
    reference cycle is freed, and what survives is frozen, so that the next collection walks
    only the next trial's objects."""
    import gc
    import weakref

    class Node:
        pass

    survivor, garbage = Node(), Node()
    garbage.me = garbage  # a cycle: only the collector frees it
    freed = weakref.ref(garbage)
    del garbage
    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: the callback must do it
    try:
        optuna_search._collect_garbage(None, None)
        assert freed() is None
        assert gc.get_freeze_count() > 0 and survivor is not None
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def test_ctrl_c_before_any_trial_is_one_line(workdir, monkeypatch, capsys):
    import litlab.cli.sweep

    def interrupted():  # Ctrl+C while torch and Lightning load, before the study opens
        raise KeyboardInterrupt

    monkeypatch.setattr(litlab.cli.sweep, "load_torch", interrupted)
    with pytest.raises(SystemExit) as end:
        litlab.cli.sweep.main(LINEAR)
    assert end.value.code == 130
    assert capsys.readouterr().err == "litlab: interrupted.\n"  # one line, not a traceback
    assert not list(workdir.rglob("trials"))  # no trial started
