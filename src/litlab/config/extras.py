"""The options that need a package outside litlab's base dependencies, and the extra of
pyproject.toml that installs it. A missing one is refused before any work starts, in one line
naming the extra, instead of failing deep inside a run (or, for the launcher, inside Hydra).
"""

from __future__ import annotations

import importlib.util

from omegaconf import DictConfig

from litlab import LitlabError

# option -> (the module it imports, the extra that installs it). A PostgreSQL study storage
# is checked by its URL's driver instead (litlab.sweep.storage, the [postgres] extra).
EXTRAS = {
    "logger=tensorboard": ("tensorboard", "tensorboard"),
    "logger=mlflow": ("mlflow", "mlflow"),
    "hydra/launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=parallel": ("hydra_plugins.hydra_joblib_launcher", "parallel"),
    "format=onnx": ("onnxscript", "onnx"),  # torch's ONNX exporter writes through onnxscript
    "data.file=*.parquet": ("pyarrow", "tables"),  # TableDataModule, and predict's input=
}


def require(option: str) -> None:
    """Refuse ``option`` (``logger=tensorboard``) when the package it needs is missing."""
    module, extra = EXTRAS.get(option, (None, None))
    if module and importlib.util.find_spec(module) is None:
        package = module.split(".")[-1]  # hydra_plugins.hydra_submitit_launcher: its package
        raise LitlabError(f"{option} needs {package}: pip install 'litlab[{extra}]'")


def check_extras(cfg: DictConfig) -> None:
    """The loggers and callbacks a run uses, by their options' names (``logger=many`` is
    ``logger=csv``, ``logger=tensorboard`` and ``logger=wandb``)."""
    for group in ("logger", "callbacks"):
        for name, node in (cfg.get(group) or {}).items():
            if node is not None:
                require(f"{group}={name}")
