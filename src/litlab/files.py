"""Files replaced whole: a reader, a crash or a full disk sees the old file or the new one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from litlab import LitlabError


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(f)`` into a temporary file next to ``path``, fsync it, then rename it over ``path``.

    The temporary file sits in the same directory so the rename never crosses filesystems (a
    copy could be cut short). On failure it is removed and ``path`` is left as it was; the error
    becomes one line naming the file and the cause.
    """
    path = Path(path)
    # Unique per writer: grid jobs on several machines may refresh one file on a shared disk.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise LitlabError(f"Could not write {path}: {err.strerror or err}.") from err
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """``text`` into ``path``, atomically (see ``write_atomic``)."""
    write_atomic(path, lambda f: f.write(text.encode()))


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (where the OS allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
