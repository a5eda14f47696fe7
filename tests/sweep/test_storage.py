"""Workers that ride out their database going away, without a server: Optuna's own storage on
SQLite, with the outage played by a failing call. test_postgres.py restarts a real server."""

from __future__ import annotations

import inspect
import sqlite3
from contextlib import closing

import optuna
import pytest
from optuna.exceptions import StorageInternalError
from optuna.storages import RDBStorage
from sqlalchemy.exc import IntegrityError, OperationalError

from litlab.sweep import storage
from litlab.sweep.storage import DatabaseGone, Patience, PatientStorage

pytestmark = pytest.mark.filterwarnings(
    "ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage:UserWarning"
)
URL = "postgresql://bob:Hunter2-canary@db.example:5432/optuna"


def outage(times: int):
    """A database call that fails as Optuna's RDBStorage does while the server is away (a
    ``StorageInternalError`` from SQLAlchemy's ``OperationalError``), ``times`` times."""
    calls = []

    def call(value):
        calls.append(value)
        if len(calls) <= times:
            refused = OperationalError(
                "SELECT 1", {}, sqlite3.OperationalError("Connection refused")
            )
            raise StorageInternalError("invalid data in the commit?") from refused
        return value

    return call, calls


def test_every_session_optuna_opens_is_waited_out():
    """A method of RDBStorage that opens a database session, left unwrapped, would crash a
    worker on the next restart: fails when an Optuna upgrade adds one."""
    opens = {
        name
        for name, fn in vars(RDBStorage).items()
        if callable(fn) and "_create_scoped_session(" in inspect.getsource(fn)
    }
    overridden = {"record_heartbeat", "_get_stale_trial_ids"}
    assert opens == set(storage.PATIENT_METHODS) | overridden
    assert all(n in vars(PatientStorage) for n in opens)


def test_a_call_waits_out_an_outage_and_gives_up_in_one_line_without_the_password(caplog):
    call, calls = outage(times=3)
    patience = Patience(URL, limit=60)
    assert patience.call(call, "done") == "done" and len(calls) == 4
    assert "out of reach (OperationalError: Connection refused)" in caplog.text
    assert "is back after" in caplog.text

    call, calls = outage(times=1000)
    patience = Patience(URL, limit=0.3)
    with pytest.raises(DatabaseGone) as err:
        patience.call(call, "never")
    message = str(err.value)
    assert len(message.splitlines()) == 1 and "Hunter2-canary" not in message
    assert message.startswith(
        "hparams_search.storage=postgresql://bob:<redacted>@db.example:5432/optuna out of reach "
        "for 0 s (hparams_search.outage_limit=0.3): OperationalError: Connection refused."
    )
    tried = len(calls)
    with pytest.raises(DatabaseGone):  # the worker is stopping: no second wait
        patience.call(call, "again")
    assert len(calls) == tried


def test_a_wrong_request_is_not_retried():
    patience = Patience(URL, limit=60)
    for error in (IntegrityError("INSERT", {}, Exception("duplicate")), ValueError("bad")):

        def fail(error=error):
            raise error

        with pytest.raises(type(error)):
            patience.call(fail)
    assert patience.down_since is None


@pytest.fixture
def study(tmp_path):
    db = tmp_path / "optuna.db"
    pending = PatientStorage(
        f"sqlite:///{db}", outage_limit=0.3, heartbeat_interval=1, grace_period=2
    )
    study = optuna.create_study(storage=pending)
    study.db, study.patient = db, pending
    return study


def test_a_heartbeat_that_cannot_be_recorded_never_ends_its_thread(study, monkeypatch):
    trial = study.ask()
    call, calls = outage(times=1000)
    monkeypatch.setattr(RDBStorage, "record_heartbeat", lambda self, trial_id: call(trial_id))
    study.patient.record_heartbeat(trial._trial_id)  # past the limit: skipped, no exception
    assert calls and study.patient.patience.gone is None  # nor does it stop the worker


def test_no_trial_is_judged_dead_before_this_worker_saw_the_database_up_a_grace_period(study):
    trial = study.ask()
    study.patient.record_heartbeat(trial._trial_id)
    with closing(sqlite3.connect(study.db)) as db, db:  # silent for 10 s, as after an outage
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-10 seconds')")

    optuna.storages.fail_stale_trials(study)  # the database only just answered: a living
    assert study.get_trials()[0].state.name == "RUNNING"  # worker's heartbeat may be on its way
    study.patient.patience.up_since -= 2  # two heartbeat intervals later, still silent: dead
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state.name == "FAIL"


def test_an_outage_waited_out_by_the_trials_lock_delays_judging_trials_too(study):
    # The worker's storage made no call during the outage: only its trials lock waited it out
    # (the same Patience, storage.patience_for). Other workers' heartbeats are old, not dead.
    trial = study.ask()
    study.patient.record_heartbeat(trial._trial_id)
    with closing(sqlite3.connect(study.db)) as db, db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-10 seconds')")
    study.patient.patience.up_since -= 60  # the database had answered this worker for long
    call, _ = outage(times=2)
    storage.patience_for(study.patient.url, 0.3).call(call, "the lock, once it is back")
    optuna.storages.fail_stale_trials(study)
    assert study.get_trials()[0].state.name == "RUNNING"
