"""Files replaced whole: a reader, a crash or a full disk sees the old file or the new one."""

from __future__ import annotations

import os
import tempfile
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
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only filesystem refuses even to unlink a file that is not there
            pass
        raise LitlabError(f"Could not write {path}: {err.strerror or err}.") from err
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """``text`` into ``path``, atomically (see ``write_atomic``)."""
    write_atomic(path, lambda f: f.write(text.encode()))


def check_writable(directory: str | Path, remedy: str) -> None:
    """Make sure files can be made in ``directory`` (or, while it does not exist yet, in the
    folder it would be made in), before the work that writes there starts; else one line: the
    folder, the cause (``Permission denied``, ``Read-only file system``, a file in its way) and
    ``remedy``, what to do. Nothing is left behind. It makes a real file, as a permission check
    would not do: root passes those, and a read-only filesystem fails only when written to."""
    directory = Path(directory).absolute()
    try:
        existing = next(p for p in (directory, *directory.parents) if p.exists())
        if not existing.is_dir():
            raise LitlabError(f"cannot write to {directory} ({existing} is a file): {remedy}")
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise LitlabError(f"cannot write to {directory} ({err.strerror or err}): {remedy}") from err


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
