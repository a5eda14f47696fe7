"""``litlab.load``: a trained model (and its data) back from a checkpoint, in one call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig

from litlab import LitlabError, first_line
from litlab.run import checkpoints
from litlab.run.build import build, build_saved_data, saved_config


def load(
    ckpt_path: str | Path,
    map_location: str | torch.device = "cpu",
    datamodule: bool = False,
    data_dir: str | Path | None = None,
) -> L.LightningModule | tuple[L.LightningModule, L.LightningDataModule]:
    """The trained model of a run dir (its ``best.ckpt``) or of a ``.ckpt`` file, in eval mode.

    The model is rebuilt from the config stored in the checkpoint and its weights are read with
    ``weights_only=True``, then moved to ``map_location``. With ``datamodule=True``, returns
    ``(model, datamodule)``: the run's datamodule, not set up yet, reading its data from
    ``data_dir`` when given (MNIST: the folder holding ``MNIST/raw/``).
    """
    run = load_run(ckpt_path, map_location, data_dir)
    return (run.model, run.datamodule) if datamodule else run.model


@dataclass
class Loaded:
    """A trained run brought back: its model, datamodule, config and checkpoint file."""

    model: L.LightningModule
    datamodule: L.LightningDataModule
    config: dict  # the run's resolved config
    path: Path  # the checkpoint read


def load_run(
    ckpt_path: str | Path,
    map_location: str | torch.device = "cpu",
    data_dir: str | Path | None = None,
) -> Loaded:
    """``load``'s work, with the config and the checkpoint file it read."""
    found = checkpoints.open_checkpoint(ckpt_path, prefer="best")
    saved = saved_config(found)  # refused unless litlab trusts what it builds
    model = build_model(saved, found)
    model.to(torch.device(map_location)).eval()
    data = build_saved_data(saved, data_dir)
    data.load_state_dict(found.data.get(type(data).__qualname__, {}))  # as Lightning saved it
    return Loaded(model, data, found.config, found.path)


def build_model(saved: DictConfig, found: checkpoints.Checkpoint) -> L.LightningModule:
    """The model the saved config describes, with the checkpoint's weights, never compiled."""
    if "compile" in saved.model:
        # Compiling pays off in training; loading must give a plain, exportable module.
        saved.model.compile = False
    model = build(saved.model, "model")
    try:
        model.load_state_dict(found.data["state_dict"])
    except RuntimeError as err:
        raise LitlabError(
            f"The weights in {found.path} do not fit the model its config describes "
            f"({first_line(err)})."
        ) from err
    return model
