"""``litlab-train``: compose a config with Hydra, then fit and test it (``litlab.run.fit``)."""

from __future__ import annotations

import shlex
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.cli.common import (
    check_resume_keys,
    discard_empty_run_dir,
    help_asked,
    hydra_main,
    interrupted_exit,
    load_torch,
    path_override,
    quote_paths,
    user_errors,
)
from litlab.cli.help import text
from litlab.config import CONFIG_DIR, register_resolvers
from litlab.config.extras import require

register_resolvers()
GRID = "hydra/callbacks=grid"  # configs/hydra/callbacks/grid.yaml: a grid's results table


def main() -> float | None:
    """``litlab-train``: answer --help, else compose the config and fit and test it."""
    if help_asked(text(CONFIG_DIR)):
        return None
    sys.argv[1:] = quote_paths(sys.argv[1:])
    with user_errors():  # before Hydra, which cannot compose hydra/launcher=slurm without it
        for arg in sys.argv[1:]:
            require(arg)
        check_resume_keys(sys.argv[1:])
    if {"-m", "--multirun", "hydra.mode=MULTIRUN"} & set(sys.argv[1:]) and GRID not in sys.argv:
        sys.argv.append(GRID)  # litlab.sweep.grid, which takes it off once Hydra has read it
    with interrupted_exit(_continue_command):
        return _main()


def _continue_command(run_dir: str) -> str:
    """A resume takes the run's own config: the run dir is all it needs (quoted for Hydra and
    the shell)."""
    return shlex.join(["litlab-train", path_override("ckpt_path", run_dir)])


@hydra_main("train")
def _main(cfg: DictConfig) -> float | None:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        load_torch()
        from litlab.sweep.multirun import grid_job  # one job of -m; DDP inside it

        return grid_job(cfg)
    with user_errors(on_error=lambda: discard_empty_run_dir(cfg)):
        if cfg.get("hparams_search"):  # litlab-sweep's; in a grid, its callback refuses it
            from litlab.sweep.grid import search_refused

            raise LitlabError(search_refused(sys.argv))
        load_torch()  # once a run starts
        from litlab.run.fit import fit_and_test

        return fit_and_test(cfg).objective


if __name__ == "__main__":
    from litlab.cli.scripts import train

    train()
