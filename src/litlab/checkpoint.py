"""Checkpoints that describe themselves: each carries the resolved config of its run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from litlab import LitlabError, __version__

KEY = "litlab"


class SaveRunConfig(Callback):
    """Stores the run's resolved config (plain values only) in every checkpoint it writes."""

    def __init__(self, config: dict):
        self.config = config

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[KEY] = {"config": self.config, "version": __version__}


def find_checkpoint(path: str | Path, prefer: str = "last") -> Path:
    """A checkpoint file, or a run directory whose ``checkpoints/<prefer>.ckpt`` is taken."""
    path = Path(path).expanduser()
    if path.is_dir():
        names = [prefer, "best", "last"]
        for name in names:
            if (path / "checkpoints" / f"{name}.ckpt").is_file():
                return path / "checkpoints" / f"{name}.ckpt"
        raise LitlabError(f"No checkpoint in {path}/checkpoints/ (looked for {prefer}.ckpt).")
    if not path.is_file():
        raise LitlabError(f"ckpt_path={path}: no such file or run directory.")
    return path


def load(path: Path) -> dict[str, Any]:
    """The whole checkpoint, loaded safely (``weights_only=True``) on the CPU."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise LitlabError(
            f"Could not load checkpoint {path}: {type(err).__name__}: {str(err).splitlines()[0]}"
        ) from err


def run_config(path: Path) -> dict:
    """The resolved config saved in a litlab checkpoint."""
    saved = load(path).get(KEY)
    if not saved:
        raise LitlabError(f"{path} was not written by a litlab run: it holds no run config.")
    return saved["config"]


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
