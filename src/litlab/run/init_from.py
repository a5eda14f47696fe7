"""``init_from=<run dir | .ckpt>``: a new run that starts from the weights of a trained one
(fine-tuning). Only the weights come along; the new run has its own run dir, wandb run,
optimizer, schedule and epochs. Strict by default: every tensor must fit. ``init_strict=false``
loads the tensors that fit (a new head with another class count, say) and says, one line each,
which ones it left as initialised, which it did not use, and which it skipped for their shape.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.run.checkpoints import KEY, find_checkpoint, load, sha256, tell
from litlab.tracking.manifest import FILENAME


def check(cfg: DictConfig) -> None:
    """Refuse what cannot be applied, before anything is built. Checked on the command's own
    config only: a resumed fine-tuned run keeps ``init_from`` in its config as a record."""
    strict = cfg.get("init_strict", True)
    if not isinstance(strict, bool):
        raise LitlabError(f"init_strict={strict!r} is not allowed: true or false.")
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise LitlabError(
            "init_from and ckpt_path do not go together: init_from starts a new run from a "
            "trained run's weights, ckpt_path continues that run. Give one of them."
        )


def load_weights(model: L.LightningModule, cfg: DictConfig) -> dict:
    """Load the weights ``cfg.init_from`` names (a run dir: its best.ckpt) into ``model``, or
    refuse in one line; returns what run.json records under ``init_from``."""
    path = find_checkpoint(str(cfg.init_from), prefer="best", key="init_from").resolve()
    data = load(path)  # weights_only=True
    theirs, ours = data["state_dict"], model.state_dict()
    fits = {k: v for k, v in theirs.items() if k in ours and v.shape == ours[k].shape}
    left = {
        "missing": sorted(ours.keys() - theirs.keys()),  # kept as this run initialised them
        "unexpected": sorted(theirs.keys() - ours.keys()),  # in the checkpoint, not used
        "skipped": sorted(k for k in ours.keys() & theirs.keys() if k not in fits),  # shapes
    }
    strict = cfg.get("init_strict", True)
    if not fits or (strict and any(left.values())):
        raise LitlabError(_misfit(path, data, cfg, theirs, ours, fits))
    model.load_state_dict(fits, strict=False)
    tell(f"init_from: loaded {len(fits)} of {len(ours)} tensors from {path}")
    lines = {
        "missing (left as initialised)": left["missing"],
        "unexpected (not used)": left["unexpected"],
        "skipped, shapes differ": [
            f"{k} ({_shape(theirs[k])} in the checkpoint, {_shape(ours[k])} here)"
            for k in left["skipped"]
        ],
    }
    for what, keys in lines.items():
        if keys:
            tell(f"init_from: {what}: {', '.join(keys)}")
    run_dir = path.parent.parent
    return {
        "run_dir": str(run_dir) if (run_dir / FILENAME).is_file() else None,
        "name": _saved(data).get("name"),
        "checkpoint": str(path),
        "sha256": sha256(path),
        "epoch": data.get("epoch"),
        "global_step": data.get("global_step"),
        "strict": strict,
        **left,
    }


def _saved(data: dict) -> dict:
    """The config of the run that wrote the checkpoint; {} for a checkpoint from elsewhere."""
    saved = data.get(KEY)
    return (saved.get("config") or {}) if isinstance(saved, dict) else {}


def _shape(tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "scalar"


def _misfit(path: Path, data: dict, cfg: DictConfig, theirs: dict, ours: dict, fits: dict) -> str:
    """One line: which tensor does not fit, whose checkpoint it is, and what to do."""
    saved = _saved(data)
    target = (saved.get("model") or {}).get("_target_")
    other = ""
    if saved and (saved.get("name") != cfg.name or target != cfg.model.get("_target_")):
        other = f" (it comes from experiment {saved.get('name')!r}, model {target})"
    if not fits:
        return (
            f"init_from={path}: none of its {len(theirs)} tensors fits this model{other}. "
            f"Give a checkpoint of this model ({cfg.model.get('_target_')})."
        )
    key = next(k for k in sorted(ours.keys() | theirs.keys()) if k not in fits)
    where = " and ".join(
        f"{_shape(d[key]) if key in d else 'missing'} {side}"
        for d, side in ((theirs, "in the checkpoint"), (ours, "here"))
    )
    return (
        f"init_from={path} does not fit this model{other}: {key} is {where}. "
        "init_strict=false loads the tensors that fit and lists the rest."
    )
