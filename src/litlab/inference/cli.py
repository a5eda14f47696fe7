"""What litlab-predict and litlab-export share as commands: --help and one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from litlab import LitlabError
from litlab.cli import discard_refused_run


def help_asked(usage: str) -> bool:
    """Print ``usage`` for -h/--help, without composing a config (Hydra's help is slow)."""
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(usage, end="")
        return True
    return False


def run_command(work: Callable[[DictConfig], object], cfg: DictConfig, example: str):
    """``work(cfg)``; a mistake the user can fix ends the process with one line."""
    try:
        if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
            raise LitlabError(f"give the run to use: {example}")
        return work(cfg)
    except LitlabError as err:
        discard_refused_run(cfg, own_dir=True)
        sys.exit(f"litlab: error: {err}")
