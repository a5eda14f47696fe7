"""Configs: where they live, how they are composed outside the CLI, and the checks that stop a
bad one before any work starts (``signatures``: keys, types, ranges; ``values``: the rest)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litlab.config.extras import check_extras
from litlab.config.resolvers import register_resolvers
from litlab.config.signatures import check_targets
from litlab.config.values import check_values

__all__ = [
    "CONFIG_DIR",
    "TEMPLATE_DIR",
    "check_config",
    "check_targets",
    "compose_config",
    "register_resolvers",
    "to_plain",
    "version_base",
]


def _shipped(folder: str) -> Path:
    """``litlab/<folder>/`` inside an installed wheel (pyproject.toml maps the packages
    ``litlab.configs`` and ``litlab.templates`` to the repository's folders of those names); in
    a clone (an editable install) they are not in src/, and are read where they are edited."""
    package = Path(__file__).resolve().parents[1]
    shipped = package / folder
    return shipped if shipped.is_dir() else package.parents[1] / folder


CONFIG_DIR = _shipped("configs")
TEMPLATE_DIR = _shipped("templates")  # templates/task/ and templates/project/ (litlab new)


def to_plain(cfg: DictConfig) -> dict:
    """The config as plain Python values, every ``${...}`` resolved; ``hydra`` itself left out."""
    return OmegaConf.to_container(cfg, resolve=True)


def version_base() -> dict:
    """``version_base="1.3"`` for Hydra 1.3, which needs it said; nothing for 1.4, which behaves
    the same and deprecates the argument (1.5 removes it)."""
    import hydra

    return {"version_base": "1.3"} if hydra.__version__.startswith("1.3") else {}


def check_config(cfg: DictConfig) -> None:
    """The seed and settings that go together, wandb's mode, the packages of the chosen loggers
    and callbacks, then each ``_target_``'s keys, types, ranges."""
    from litlab.tracking.wandb_run import check_modes  # imports Lightning, as check_targets does

    check_values(cfg)
    check_modes(cfg.get("logger"))
    check_extras(cfg)
    check_targets(cfg)


def compose_config(
    overrides: list[str] | tuple[str, ...] = (),
    output_dir: str | Path | None = None,
    config_name: str = "train",
) -> DictConfig:
    """A config as ``litlab-train`` would compose it, for notebooks and tests.

    Outside a Hydra app there is no run directory: ``output_dir`` (default: a new temporary
    directory) stands in for it, and relative paths start from the current directory.
    """
    import os
    import tempfile

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), **version_base()):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="litlab-"))
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out.resolve())
        cfg.hydra.runtime.cwd = os.getcwd()
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
