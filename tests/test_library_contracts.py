"""Behaviour of other libraries' private APIs that litlab relies on, pinned so an upgrade that
changes it fails here first."""

from __future__ import annotations

import pytest
from hydra.core.utils import JobReturn, JobStatus

# --- Hydra --------------------------------------------------------------------------------


def test_hydra_job_return_built_failed_reraises_its_error():
    """litlab.sweep.slurm builds the JobReturn of a SLURM job lost without a result as Hydra's
    run_job builds a failed job's (status, then the ``return_value`` setter); Hydra's sweeper
    then raises the error from ``.return_value``, and litlab.sweep.grid reads it from there."""
    error = RuntimeError("SLURM job 7 left the queue without a result")
    lost = JobReturn(overrides=["seed=1"], status=JobStatus.FAILED)
    lost.return_value = error
    with pytest.raises(RuntimeError) as raised:
        _ = lost.return_value
    assert raised.value is error

    done = JobReturn(overrides=["seed=1"], status=JobStatus.COMPLETED)
    done.return_value = 0.25
    assert done.return_value == 0.25


# --- Lightning and wandb ---------------------------------------------------------------------


def test_wandb_logger_keeps_init_kwargs_and_starts_no_run_until_asked(tmp_path):
    """tracking.wandb_run.quiet drops ``_wandb_init["anonymous"]`` (Lightning always passes it,
    and wandb warns about it); ``finish`` reads ``_experiment`` to close only a started run."""
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(save_dir=str(tmp_path), mode="offline", id="pinned01")
    assert "anonymous" in logger._wandb_init
    assert logger._experiment is None  # nothing started yet
    assert logger.version == "pinned01"  # the public id litlab records before wandb starts


def test_wandb_takes_the_modes_litlab_lets_through():
    """tracking.wandb_run.check_modes refuses any ``WANDB_MODE`` or ``mode`` outside MODES, which
    wandb's Settings would refuse at the run's first use."""
    import typing

    from wandb.sdk.wandb_settings import Settings

    from litlab.tracking.wandb_run import MODES

    assert set(typing.get_args(Settings.model_fields["mode"].annotation)) == set(MODES)


def test_csv_experiment_writer_hooks_litlab_overrides_exist():
    """tracking.csv_logger keeps metrics.csv across resumes by overriding two private methods of
    Lightning's ExperimentWriter and filling CSVLogger's ``_experiment``."""
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    assert callable(ExperimentWriter._check_log_dir_exists)
    assert callable(ExperimentWriter._record_new_keys)
    assert CSVLogger(save_dir=".")._experiment is None


def test_lightning_drops_saved_hyperparameters_it_is_told_to_ignore():
    """LitTask.save_hyperparameters calls Lightning's twice: the second call, with the plain
    values and ``ignore=`` the others, must drop keys the first saved from ``hparams`` and
    ``hparams_initial``. LitTask silences the warning the first call gives about modules."""
    import lightning as L
    from torch import nn

    class Task(L.LightningModule):
        def __init__(self, width: int = 1, net=None):
            super().__init__()
            with pytest.warns(UserWarning, match="Attribute 'net' is an instance of `nn.Module`"):
                self.save_hyperparameters()
            self.save_hyperparameters({"width": width}, ignore=["net"])

    task = Task(width=3, net=nn.Linear(1, 1))
    assert dict(task.hparams) == {"width": 3} == dict(task.hparams_initial)


# --- Optuna -------------------------------------------------------------------------------------


def test_optuna_optimize_asks_through_the_studys_own_ask():
    """litlab.sweep.optuna_search replaces ``study.ask`` on the study to cap n_trials across
    workers: Study.optimize must take its trials from that attribute."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    asked = []
    original = study.ask

    def ask(*args, **kwargs):
        asked.append(True)
        return original(*args, **kwargs)

    study.ask = ask
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(asked) == 2


def test_optuna_logs_a_trials_failure_under_the_logger_litlab_quiets():
    """``_QuietTrialErrors`` filters the logger of optuna.study._optimize (a failed trial is
    logged there with its whole traceback)."""
    import logging

    from optuna.study import _optimize

    assert _optimize._logger.name == "optuna.study._optimize"
    assert isinstance(logging.getLogger("optuna.study._optimize"), logging.Logger)
