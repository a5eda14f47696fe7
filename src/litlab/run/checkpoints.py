"""Checkpoints that describe themselves (each carries its run's resolved config), written
atomically, read safely (``weights_only=True``), and refused in one line when unreadable."""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from typing_extensions import override

from litlab import LitlabError, __version__, first_line
from litlab.config.resolvers import LATEST, latest_run
from litlab.files import write_atomic

KEY = "litlab"


class SaveRunConfig(Callback):
    """Stores the run's resolved config (plain values only) in every checkpoint it writes, and
    ``source``: the config before resolving, which a resume re-resolves with its overrides."""

    def __init__(self, config: dict, source: dict | None = None):
        self.config = config
        self.source = source

    @override
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = {"config": self.config, "source": self.source, "version": __version__}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints replace the previous file whole, or not at all.

    Lightning's own save writes a temporary file in the system's temp dir and moves it over,
    which across filesystems is a copy that a full disk cuts short; nor does it fsync. A failed
    write here leaves the previous ``last.ckpt``/``best.ckpt`` intact and ends the run with one
    line naming the file and the cause.
    """

    @override
    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any = None) -> None:
        if "://" in str(path):  # remote storage: fsspec's transactions are the right tool there
            return super().save_checkpoint(checkpoint, path, storage_options)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, lambda f: f.write(buffer.getbuffer()))


def find_checkpoint(path: str | Path, prefer: str = "last", key: str = "ckpt_path") -> Path:
    """A checkpoint file, or a run directory whose ``checkpoints/<prefer>.ckpt`` is taken;
    ``key`` is the option that named it, for the error."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in (prefer, "best", "last"):
            if (path / "checkpoints" / f"{name}.ckpt").is_file():
                return path / "checkpoints" / f"{name}.ckpt"
        raise LitlabError(f"No checkpoint in {path}/checkpoints/ (looked for {prefer}.ckpt).")
    if not path.is_file():
        raise LitlabError(f"{key}={path}: no such file or run directory.")
    return path


def latest(runs: Path, resume: bool = True) -> Path:
    """``ckpt_path=latest``: the newest run dir in ``runs`` (``logs/<experiment>/runs``) that has
    a checkpoint, said in one line; the same one ``${litlab_run_dir:}`` made the run dir.
    ``resume=False``: a command that only reads the run (litlab-eval, -predict, -export)."""
    found = latest_run(runs)
    if found is None:
        if resume:
            use, remedy = " to resume", "start a new run"
        else:
            use, remedy = "", "train one first (litlab-train experiment=<name>)"
        raise LitlabError(
            f"ckpt_path={LATEST}: no run in {runs} has a checkpoint{use}. Name the "
            f"experiment (experiment=<name>), give a run dir, or {remedy}."
        )
    tell(f"ckpt_path={LATEST}: {'resuming' if resume else 'using'} {found}")
    return found


def use_latest(cfg: DictConfig, experiment: str, resume: bool = False) -> None:
    """``ckpt_path=latest`` replaced by the run dir it stands for (so records say which): the
    newest run of ``experiment`` with a checkpoint, in ``<paths.log_dir>/<experiment>/runs``
    where litlab-train writes them. That run dir is then read as any given one is (a resume its
    ``last.ckpt``, litlab-eval, -predict and -export its ``best.ckpt``). Any other value stays."""
    if cfg.get("ckpt_path") == LATEST:
        cfg.ckpt_path = str(latest(Path(cfg.paths.log_dir) / experiment / "runs", resume))


def sha256(path: Path) -> str:
    """The file's SHA-256: which weights a run used, even if the file is replaced later."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unreadable(path: Path, err: Exception) -> LitlabError:
    """Why torch could not read ``path``, in words that never advise unsafe loading."""
    text = str(err)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        why = (
            f"it holds Python objects ({unsafe.group(1)}) that litlab does not load: it reads "
            "plain values only"
        )
    elif "weights_only" in text or isinstance(err, pickle.UnpicklingError | EOFError):
        why = "it is truncated, or not a PyTorch checkpoint"
    else:
        why = f"it is truncated, or not a PyTorch checkpoint ({first_line(err)})"
    return LitlabError(f"Could not read checkpoint {path}: {why}.")


def load(path: Path) -> dict[str, Any]:
    """The whole checkpoint, loaded safely on the CPU; a one-line error for anything else."""
    try:
        size = path.stat().st_size
    except OSError as err:
        raise LitlabError(f"Could not read checkpoint {path}: {err.strerror or err}.") from err
    if size == 0:
        raise LitlabError(
            f"Could not read checkpoint {path}: the file is empty (0 bytes); it was probably "
            "cut off while being written."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise _unreadable(path, err) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        what = "a dict without weights" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise LitlabError(
            f"Could not use {path}: it holds {what}, not a Lightning checkpoint of a litlab run."
        )
    return ckpt


def run_config(ckpt: dict, path: Path) -> dict:
    """The resolved config saved in a (loaded) litlab checkpoint."""
    saved = ckpt.get(KEY)
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise LitlabError(f"{path} was not written by a litlab run: it holds no run config.")
    return saved["config"]


@dataclass
class Checkpoint:
    """A readable litlab checkpoint: its path and what it holds, loaded."""

    path: Path
    data: dict

    @property
    def config(self) -> dict:
        """The run's resolved config."""
        return run_config(self.data, self.path)

    @property
    def source(self) -> dict | None:
        """The run's config before resolving, which a resume re-resolves with its overrides."""
        return self.data[KEY].get("source")


def open_checkpoint(path: str | Path, prefer: str) -> Checkpoint:
    """The checkpoint ``path`` names, loaded; for a resume (``prefer="last"``), an unreadable
    ``last.ckpt`` falls back to the newest readable checkpoint of the run, with a warning."""
    first = find_checkpoint(path, prefer)
    try:
        checkpoint = Checkpoint(first, load(first))
        checkpoint.config  # noqa: B018 - refuse a checkpoint without a run config here
        return checkpoint
    except LitlabError as err:
        if prefer != "last" or first.name != "last.ckpt":
            raise
        for other in _newest_first(first.parent, skip=first):
            try:
                checkpoint = Checkpoint(other, load(other))
                checkpoint.config  # noqa: B018
            except LitlabError:
                continue
            epoch = checkpoint.data.get("epoch")
            _warn(f"{err} Resuming from {other.name} instead (epoch {epoch}).")
            return checkpoint
        raise


def _newest_first(folder: Path, skip: Path) -> list[Path]:
    found = [p for p in folder.glob("*.ckpt") if p != skip and p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


@rank_zero_only
def _warn(message: str) -> None:
    print(f"litlab: warning: {message}", file=sys.stderr)


@rank_zero_only
def tell(message: str) -> None:
    """One line for the user on stderr, ``litlab: <message>`` (rank 0 only)."""
    print(f"litlab: {message}", file=sys.stderr)


def check_same_task(saved: dict, cfg: dict, path: Path) -> None:
    """Stop early, and say how to fix it, when a checkpoint belongs to another experiment."""
    keys = (("name", None), ("model", "_target_"), ("data", "_target_"))
    for key, sub in keys:
        theirs = saved.get(key, {}).get(sub) if sub else saved.get(key)
        ours = cfg.get(key, {}).get(sub) if sub else cfg.get(key)
        if theirs != ours:
            label = f"{key}.{sub}" if sub else key
            raise LitlabError(
                f"{path} comes from experiment {saved.get('name')!r} ({label}={theirs}), "
                f"but this run is {cfg.get('name')!r} ({label}={ours}). "
                f"Add experiment={saved.get('name')} to resume it, or pass a checkpoint of this "
                "experiment."
            )
