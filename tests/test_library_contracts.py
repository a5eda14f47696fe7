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


def test_lightning_names_the_running_hook_in_current_fx_name(tmp_path):
    """LitTask.__setattr__ fast-paths ``_current_fx_name``, which Lightning sets around every
    hook: it must still be the attribute Lightning writes."""
    import lightning as L

    from litlab.models.regression import PolynomialRegression

    seen = []

    class Spy(PolynomialRegression):
        def training_step(self, batch, batch_idx):
            seen.append(self._current_fx_name)
            return super().training_step(batch, batch_idx)

    from litlab.data.synthetic import LinearDataModule

    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Spy(), LinearDataModule(num_samples=10, batch_size=10))
    assert seen == ["training_step"]


def test_csv_experiment_writer_hooks_litlab_overrides_exist():
    """tracking.csv_logger keeps metrics.csv across resumes by overriding two private methods of
    Lightning's ExperimentWriter and filling CSVLogger's ``_experiment``."""
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    assert callable(ExperimentWriter._check_log_dir_exists)
    assert callable(ExperimentWriter._record_new_keys)
    assert CSVLogger(save_dir=".")._experiment is None


def test_lightning_keeps_hyperparameters_where_littask_filters_them():
    """LitTask.save_hyperparameters reads the constructor's arguments with Lightning's
    ``collect_init_args`` and drops what is not plain data from ``_hparams`` and
    ``_hparams_initial`` after Lightning filled them."""
    import inspect

    import lightning as L
    from lightning.pytorch.utilities.parsing import collect_init_args

    class Task(L.LightningModule):
        def __init__(self, width: int = 1):
            super().__init__()
            self.args = collect_init_args(inspect.currentframe(), [], (L.LightningModule,))
            self.save_hyperparameters()

    task = Task(width=3)
    assert task.args == [{"width": 3}]
    assert dict(task._hparams) == {"width": 3} == dict(task._hparams_initial)


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
    """``_QuietInterrupt`` filters the logger of optuna.study._optimize (a trial stopped by
    Ctrl+C is logged there with its whole traceback)."""
    import logging

    from optuna.study import _optimize

    assert _optimize._logger.name == "optuna.study._optimize"
    assert isinstance(logging.getLogger("optuna.study._optimize"), logging.Logger)
