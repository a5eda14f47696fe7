"""The study's database: a URL as users write it, one clear line when it cannot be used, and a
schema that any number of workers started at the same second create exactly once.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from litlab import LitlabError, first_line
from litlab.tracking.redaction import redact_text

T = TypeVar("T")

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
def lock(url: str, name: str, lock_dir: Path) -> Iterator[None]:
    """One worker at a time, across processes and machines, for what Optuna does not make atomic.

    ``schema``: creating Optuna's tables and the study. ``CREATE TABLE IF NOT EXISTS`` is not
    atomic on PostgreSQL: workers racing on an empty database die with ``UniqueViolation`` on
    ``pg_type``. Optuna's maintainers advise creating the schema before starting workers; the
    lock does that for whoever comes first. ``trials``: counting the study's trials and adding
    one, so that n_trials workers never start more than n_trials.

    PostgreSQL: a session advisory lock; SQLite: a file lock next to the database; other
    databases: none (``retry_races`` covers the schema, and a trial or two may run over).
    """
    if url.startswith("postgresql"):
        with _advisory_lock(url, name):
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
def _advisory_lock(url: str, name: str) -> Iterator[None]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    key = int.from_bytes(hashlib.sha1(f"litlab:{name}".encode()).digest()[:7], "big")
    engine = sqlalchemy.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    finally:
        engine.dispose()
