"""``litlab-train``: compose a config with Hydra, then fit and test it (``litlab.run.fit``)."""

from __future__ import annotations

import shlex

import hydra
from omegaconf import DictConfig

from litlab.cli.common import discard_refused_run, help_asked, interrupted_exit, user_errors
from litlab.cli.help import text
from litlab.config import CONFIG_DIR, register_resolvers
from litlab.run.multirun import in_multirun, job_argv, needs_own_process, run_job_apart

register_resolvers()


def main() -> float | None:
    """``litlab-train``: answer --help, else compose the config and fit and test it."""
    if help_asked(text(CONFIG_DIR)):
        return None
    with interrupted_exit(_continue_command):
        return _main()


def _continue_command(run_dir: str) -> str:
    """A resume takes the run's own config: the run dir is all it needs."""
    return shlex.join(["litlab-train", f"ckpt_path={run_dir}"])


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    from litlab.run.fit import fit_and_test  # torch and Lightning load once a run really starts

    if in_multirun():
        # Hydra records a failed job as such and goes on with the rest of the grid.
        if needs_own_process(cfg):  # a DDP job: its failure must not end the grid
            return run_job_apart(cfg)
        with job_argv():  # DDP children of a multirun job rerun that job only
            return fit_and_test(cfg).objective
    with user_errors(on_error=lambda: discard_refused_run(cfg)):
        return fit_and_test(cfg).objective


if __name__ == "__main__":
    main()
