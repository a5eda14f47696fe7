"""The study's database: a URL as users write it, one clear line when it cannot be used, a
schema that any number of workers started at the same second create exactly once, and workers
that ride out the database going away for a while (restarted, or stopped).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from optuna.storages import RDBStorage

from litlab import LitlabError, first_line
from litlab.sweep import interrupt
from litlab.tracking.redaction import redact_text

T = TypeVar("T")
log = logging.getLogger(__name__)

# The module SQLAlchemy imports for a URL -> what to pip install for it.
_PACKAGES = {
    "psycopg": "'litlab[postgres]'",  # postgresql://
    "psycopg2": "psycopg2-binary",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
}


def check_driver(url: str) -> None:
    """Fail in one line, naming the package to install, when the URL's driver is missing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    where = f"hparams_search.storage={redact_text(url)}"  # postgresql://bob:<redacted>@db/..
    try:
        dialect = make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as err:
        raise LitlabError(
            f"{where} is no database URL SQLAlchemy knows ({describe(err, url)}); use e.g. "
            "postgresql://user@host:5432/optuna or sqlite:///path/optuna.db."
        ) from err
    try:
        dialect.import_dbapi()
    except ImportError as err:
        module = (getattr(err, "name", None) or "").split(".")[0]
        package = _PACKAGES.get(module, module or "the database driver")
        raise LitlabError(
            f"{where} needs the Python module {module or '?'}: pip install {package}."
        ) from err


def describe(err: BaseException, url: str) -> str:
    """A database error in one line (``litlab.first_line``), without the URL's password: the
    driver's own error when SQLAlchemy wraps one (``err.orig``)."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # not a URL SQLAlchemy can parse: redact_text still hides user:pw@
        password = None
    text = first_line(getattr(err, "orig", None) or err)
    return redact_text(text, [password] if password else [])


def is_race(err: BaseException) -> bool:
    """Two workers creating the same table, type or row: the other one won, try again."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    if isinstance(err, IntegrityError | ProgrammingError):
        return True
    text = str(err).lower()
    return isinstance(err, OperationalError) and ("already exists" in text or "locked" in text)


def retry_races(make: Callable[[], T], attempts: int = 8) -> T:
    """``make()``, tried again when it lost a race with another worker creating the same
    table or study."""
    for attempt in range(attempts):
        try:
            return make()
        except Exception as err:
            if attempt == attempts - 1 or not is_race(err):
                raise
            time.sleep(random.uniform(0.05, 0.3) * (attempt + 1))  # let the winner finish
    raise AssertionError("unreachable")


@contextmanager
def lock(url: str, name: str, lock_dir: Path, patience: float | None = None) -> Iterator[None]:
    """One worker at a time, across processes and machines, for what Optuna does not make atomic.

    ``schema``: creating Optuna's tables and the study. ``CREATE TABLE IF NOT EXISTS`` is not
    atomic on PostgreSQL: workers racing on an empty database die with ``UniqueViolation`` on
    ``pg_type``. Optuna's maintainers advise creating the schema before starting workers; the
    lock does that for whoever comes first. ``trials``: counting the study's trials and adding
    one, so that n_trials workers never start more than n_trials.

    PostgreSQL: a session advisory lock, taken once the server is back when ``patience`` (the
    outage limit, seconds) is given, waiting through the process's one ``patience_for`` the
    database; SQLite: a file lock next to the database; other databases: none (``retry_races``
    covers the schema, and a trial or two may run over).
    """
    if url.startswith("postgresql"):
        with _advisory_lock(url, name, patience):
            yield
    elif url.startswith("sqlite"):
        import fcntl

        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f".{name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    else:
        yield


@contextmanager
def _advisory_lock(url: str, name: str, patience: float | None) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha1(f"litlab:{name}".encode()).digest()[:7], "big")
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)

    def take():
        conn = engine.connect()
        try:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        except Exception:
            conn.close()
            raise
        return conn

    try:
        conn = patience_for(url, patience).call(take) if patience is not None else take()
        try:
            yield
        finally:
            try:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            except Exception as err:
                if not lost(err):
                    raise  # else the server restarted: the lock went with the connection
            finally:
                conn.close()
    finally:
        engine.dispose()


class DatabaseGone(LitlabError):
    """The study's database stayed out of reach longer than ``hparams_search.outage_limit``."""


def lost(err: BaseException) -> bool:
    """Whether ``err`` says the database went away (restarted, stopped, unreachable) rather
    than that something asked of it was wrong: SQLAlchemy's ``OperationalError`` and
    ``InterfaceError`` (the DB-API's errors "not necessarily under the control of the
    programmer"), which Optuna's RDBStorage wraps in ``StorageInternalError``."""
    from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError

    # PendingRollbackError: a commit whose connection the server closed mid-transaction (its
    # OperationalError, e.g. AdminShutdown, is the context); Optuna's session rolls it back.
    return isinstance(_unwrap(err), OperationalError | InterfaceError | PendingRollbackError)


def _unwrap(err: BaseException) -> BaseException | None:
    """SQLAlchemy's error behind Optuna's ``StorageInternalError``, whose own words ("invalid data
    in the commit, e.g. exceeding max length") are a guess."""
    from optuna.exceptions import StorageInternalError

    return err.__cause__ if isinstance(err, StorageInternalError) else err


def gone_behind(err: BaseException | None) -> DatabaseGone | None:
    """The ``DatabaseGone`` that ``err`` was raised in the handling of, if any.

    A trial whose storage call gave up ends inside Optuna's ``study.optimize``, which then tells
    the study the trial failed; that call fails too, and Optuna's clean-up raises an error of its
    own (``UnboundLocalError``, or an ``AssertionError``) over the one that says what happened.
    """
    while err is not None and not isinstance(err, DatabaseGone):
        err = err.__context__
    return err


class Patience:
    """Calls that ride out a database outage: a call that fails because the database is out of
    reach is tried again, with backoff but at most a second apart, until the database is back or
    has been away for ``limit`` seconds; then it raises ``DatabaseGone`` (one line: the
    database, password hidden, and the last error). Ctrl+C ends the wait at once.

    One ``Patience`` per process and database, shared by its threads: the outage is timed from
    its first failed call, so a worker waits ``limit`` seconds in all, not per call.
    """

    def __init__(self, url: str, limit: float):
        self.url, self.limit = url, limit
        self.down_since: float | None = None  # time.monotonic() of the outage's first error
        self.up_since = time.monotonic()  # since when the database answers, as far as we know
        self.gone: DatabaseGone | None = None  # given up: every later call fails at once

    def call(self, fn: Callable[..., T], *args, ends_worker: bool = True, **kwargs) -> T:
        """``fn(*args, **kwargs)``, waiting out an outage. Having given up, a call with
        ``ends_worker`` makes every later call fail at once too: the worker is stopping."""
        delay = 0.1
        while True:
            if self.gone:
                raise self.gone
            try:
                result = fn(*args, **kwargs)
            except Exception as err:
                if not lost(err):
                    raise
                err = _unwrap(err) or err
                waited = self._down(err)
                if waited >= self.limit or interrupt.requested():
                    gone = DatabaseGone(
                        f"hparams_search.storage={redact_text(self.url)} out of reach for "
                        f"{waited:.0f} s (hparams_search.outage_limit={self.limit:g}): "
                        f"{describe(err, self.url)}. Once it is back, run the same command "
                        "again: the trial this stopped is retried, as a killed one is."
                    )
                    if ends_worker:
                        self.gone = gone
                    raise gone from err
                time.sleep(min(delay, self.limit - waited) * random.uniform(0.5, 1))
                delay = min(2 * delay, 1.0)
            else:
                if self.down_since is not None:
                    log.warning(
                        "the study's database is back after %.0f s",
                        time.monotonic() - self.down_since,
                    )
                    self.down_since, self.up_since = None, time.monotonic()
                return result

    def _down(self, err: BaseException) -> float:
        """Seconds since the outage began, ``err`` being its latest error."""
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "the study's database %s is out of reach (%s); waiting up to %g s for it",
                redact_text(self.url), describe(err, self.url), self.limit,
            )  # fmt: skip
        return now - self.down_since


# The methods of Optuna's RDBStorage that each open a database session of their own (Optuna 4
# and 5; the cache in front of it calls the private ones): each is retried whole on an outage.
# tests/sweep/test_storage.py fails when Optuna adds one this list lacks.
PATIENT_METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
    "_create_new_trial", "_set_trial_param", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_user_attrs", "get_trial_system_attrs", "get_trial_id_from_study_id_trial_number",
    "get_trial", "_get_trials", "_get_best_trial_id",
)  # fmt: skip


@functools.cache
def patience_for(url: str, limit: float) -> Patience:
    """The process's one ``Patience`` for the database at ``url``. The storage, its heartbeat
    thread and the trials lock must see one outage: a worker whose lock waited out a restart that
    its storage never saw would judge every other worker's trial dead (old heartbeats) at once."""
    return Patience(url, limit)


class PatientStorage(RDBStorage):
    """Optuna's RDBStorage for workers that ride out a database outage of up to
    ``outage_limit`` seconds (``Patience``), with pooled connections pinged before use
    (SQLAlchemy's ``pool_pre_ping``: one the server closed is replaced, not failed on).

    The heartbeat never kills its thread: a heartbeat that cannot be recorded is tried again
    (``Patience``), then skipped until the next. And no trial is judged dead by its heartbeat
    (``fail_stale_trials``) until this worker has seen the database answer for a whole grace
    period (twice the heartbeat interval): after an outage every trial's heartbeat is old, and
    every living worker's next one lands sooner than that (within a second of the database
    coming back, or a heartbeat interval after an outage past the limit).
    """

    def __init__(self, url: str, *, outage_limit: float, engine_kwargs: dict | None = None, **kw):
        self.patience = patience_for(url, outage_limit)
        super().__init__(url, engine_kwargs={"pool_pre_ping": True, **(engine_kwargs or {})}, **kw)

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.patience.call(super().record_heartbeat, trial_id, ends_worker=False)
        except DatabaseGone:
            pass  # the outage is logged; Optuna's heartbeat thread tries again in an interval
        except Exception as err:
            log.warning("trial %s: its heartbeat was not recorded: %s", trial_id, first_line(err))

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = self.patience.call(super()._get_stale_trial_ids, study_id)
        grace = self.grace_period or 2 * (self.heartbeat_interval or 0)
        return stale if time.monotonic() - self.patience.up_since >= grace else []


def _patient(name: str):
    method = getattr(RDBStorage, name)

    def call(self: PatientStorage, *args, **kwargs):
        return self.patience.call(method, self, *args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


for _name in PATIENT_METHODS:
    setattr(PatientStorage, _name, _patient(_name))
