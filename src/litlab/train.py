"""``litlab-train``: compose a config with Hydra, then fit and test (see ``litlab.run``)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.config import CONFIG_DIR, register_resolvers
from litlab.sweep.ddp import in_multirun, job_argv

register_resolvers()


def main() -> float | None:
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        from litlab.help import text

        print(text(CONFIG_DIR), end="")
        return None
    return _main()


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def _main(cfg: DictConfig) -> float | None:
    from litlab.run import train  # torch and Lightning load only once a run really starts

    try:
        with job_argv():  # DDP children of a multirun job rerun that job only
            return train(cfg)
    except LitlabError as err:
        if in_multirun():
            raise  # Hydra records the job as failed and goes on with the rest of the sweep
        sys.exit(f"litlab: error: {err}")


if __name__ == "__main__":
    main()
