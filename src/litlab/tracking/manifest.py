"""``run.json``: what a run dir holds, written when the run starts and updated however it ends."""

from __future__ import annotations

import json
import sys
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

from litlab import LitlabError
from litlab.files import write_text
from litlab.tracking.provenance import versions
from litlab.tracking.redaction import redact

FILENAME = "run.json"
# What each attempt of a run (the first one, then every resume) leaves in ``history``.
ATTEMPT_KEYS = ("command", "overrides", "start_time", "end_time", "status", "error")


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def read(run_dir: str | Path) -> dict:
    """The manifest of a run dir; empty if it has none (or an unreadable one)."""
    try:
        return json.loads((Path(run_dir) / FILENAME).read_text())
    except (OSError, ValueError):
        return {}


def mark(run_dir: str | Path, status: str, error: str | None) -> None:
    """End the run.json of a run whose own process could not (it was killed, or its DDP ranks
    were stopped): its status, its error, the end time."""
    data = read(run_dir)
    data.update(status=status, error=error, end_time=_now())
    write_text(Path(run_dir) / FILENAME, json.dumps(data, indent=2, default=str) + "\n")


class Manifest:
    """Use as ``with Manifest(run_dir, provenance.gather()) as m: ... m.update(...)``.

    The status is ``running`` while the run runs, then ``finished``, ``failed`` (with the error) or
    ``interrupted``, or ``pruned`` when a sweep's pruner stopped it (the caller says so). The top
    level describes the latest attempt (its command and overrides); a resumed run passes its run
    dir's record as ``previous``: its earlier attempts, each with its command, overrides and
    outcome, go to ``history``, and it keeps its wandb run. Nothing is written before
    ``__enter__``, so a run that is refused leaves the run dir as it was. Only rank 0 writes;
    everything recorded passes through ``redact``.
    """

    def __init__(self, run_dir: str | Path, provenance: dict, previous: dict | None = None):
        self.path = Path(run_dir) / FILENAME
        self.interrupted = False  # set by the caller: Lightning turns Ctrl+C into SystemExit(1)
        self.pruned = False  # set by the caller: Optuna's TrialPruned, which this does not import
        self.data: dict[str, Any] = {**(previous or {})}
        self.data.update(status="running", error=None, start_time=_now(), end_time=None)
        self.data.update(redact(provenance))
        if previous:
            last = {k: previous.get(k) for k in ATTEMPT_KEYS}
            self.data["history"] = [*previous.get("history", []), last]

    def update(self, **fields: Any) -> None:
        self.data.update(redact(fields))
        self._write()

    @rank_zero_only
    def _write(self) -> None:
        text = json.dumps(self.data, indent=2, default=str) + "\n"
        write_text(self.path, text)

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
        elif self.pruned:
            status, message = "pruned", str(err)  # "Trial was pruned at epoch 3."
        else:
            status = "failed"
            message = "".join(traceback.format_exception_only(kind, err)).strip()
        try:
            self.update(status=status, error=message, end_time=_now(), versions=versions())
        except LitlabError as write_err:
            if err is None:
                raise
            # The run's own error says more (a full disk, say); this one only follows from it.
            print(f"litlab: warning: {write_err}", file=sys.stderr)
