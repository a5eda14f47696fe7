"""``litlab-train``: compose a config with Hydra, then fit and test (see ``litlab.run``)."""

from __future__ import annotations

import shlex
import sys

import hydra
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.cli import discard_refused_run, interrupted_exit
from litlab.config import CONFIG_DIR, register_resolvers
from litlab.sweep.ddp import in_multirun, job_argv, needs_own_process, run_job_apart

register_resolvers()


def main() -> float | None:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        from litlab.help import text

        print(text(CONFIG_DIR), end="")
        return None
    with interrupted_exit(_continue_command):
        return _main()


def _continue_command(run_dir: str) -> str:
    """A resume takes the run's own config: the run dir is all it needs."""
    return shlex.join(["litlab-train", f"ckpt_path={run_dir}"])


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    from litlab.run import train  # torch and Lightning load only once a run really starts

    try:
        if needs_own_process(cfg):  # a DDP job of a grid: its failure must not end the grid
            return run_job_apart(cfg)
        with job_argv():  # DDP children of a multirun job rerun that job only
            return train(cfg)
    except LitlabError as err:
        if in_multirun():
            raise  # Hydra records the job as failed and goes on with the rest of the sweep
        discard_refused_run(cfg)
        sys.exit(f"litlab: error: {err}")


if __name__ == "__main__":
    main()
