"""``run.json``: what a run dir holds, written when the run starts and updated however it ends."""

from __future__ import annotations

import json
import os
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from litlab import tracking

FILENAME = "run.json"


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def read(run_dir: str | Path) -> dict:
    """The manifest of a run dir; empty if it has none (or an unreadable one)."""
    try:
        return json.loads((Path(run_dir) / FILENAME).read_text())
    except (OSError, ValueError):
        return {}


class Manifest:
    """Use as ``with Manifest(run_dir) as m: ... m.update(...)``.

    The status is ``running`` while the run runs, then ``finished``, ``failed`` (with the error) or
    ``interrupted``. A resumed run keeps its wandb run id and lists earlier attempts in
    ``history``. Only rank 0 writes; everything recorded passes through ``tracking.redact``.
    """

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / FILENAME
        self.previous = read(run_dir)
        self.interrupted = False  # set by the caller: Lightning turns Ctrl+C into SystemExit(1)
        self.data: dict[str, Any] = {
            "status": "running",
            "error": None,
            "start_time": _now(),
            "end_time": None,
            "command": tracking.command_line(),
            "overrides": tracking.overrides(),
            "cwd": os.getcwd(),
            "git": tracking.git_info(),
            "versions": tracking.versions(),
            "host": tracking.host_info(),
        }
        if self.previous:
            earlier = self.previous.get("history", [])
            last = {k: self.previous.get(k) for k in ("start_time", "end_time", "status", "error")}
            self.data["history"] = [*earlier, last]

    @property
    def previous_wandb(self) -> dict | None:
        return self.previous.get("wandb")

    def update(self, **fields: Any) -> None:
        self.data.update(tracking.redact(fields))
        self._write()

    @rank_zero_only
    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n")
        tmp.replace(self.path)  # a reader never sees half a file

    def __enter__(self) -> Manifest:
        self._write()
        return self

    def __exit__(self, kind, err, tb) -> None:
        if err is None:
            status, message = "finished", None
        elif isinstance(err, KeyboardInterrupt) or (
            isinstance(err, SystemExit) and self.interrupted
        ):
            status, message = "interrupted", "interrupted (Ctrl+C or a signal)"
        else:
            status = "failed"
            message = "".join(traceback.format_exception_only(kind, err)).strip()
        self.update(status=status, error=message, end_time=_now(), versions=tracking.versions())
