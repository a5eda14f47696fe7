"""Read what an offline wandb run recorded, straight from its ``run-<id>.wandb`` file.

wandb >= 0.2x keeps an offline run's config and summary only in that transaction log (what
``wandb sync`` uploads). Its format is LevelDB's log format: 32 KiB blocks of records, each with a
7-byte header (crc32c, length, type), after a 7-byte file header; a record's payload is a
``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path} is not a wandb transaction log"
    pos, payload = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0:
            pos += left
            continue
        payload += data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(payload)
            payload = b""
            yield record


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@dataclass
class OfflineRun:
    dir: Path
    config: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    artifacts: list = field(default_factory=list)
    exit_code: int | None = None  # None: the run was never finished (killed, say)


def read_offline_run(run_dir: Path) -> OfflineRun:
    """The one offline wandb run under ``<run_dir>/wandb``: config, summary, history, artifacts,
    exit code."""
    (wandb_dir,) = sorted((run_dir / "wandb").glob("offline-run-*"))
    (log,) = wandb_dir.glob("run-*.wandb")
    run = OfflineRun(wandb_dir)
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            items = record.run.config.update
        elif kind == "config":
            items = record.config.update
        else:
            items = []
        for item in items:
            run.config[_key(item)] = json.loads(item.value_json)
        if kind == "summary":
            for item in record.summary.update:
                run.summary[_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "artifact":
            run.artifacts.append(record.artifact)
        elif kind == "exit":  # wandb shows 0 as finished, anything else as failed
            run.exit_code = record.exit.exit_code
    return run
