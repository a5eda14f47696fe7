"""``litlab-eval ckpt_path=<checkpoint or run dir>``: test a trained run with its own config."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.cli import discard_refused_run, interrupted_exit
from litlab.config import CONFIG_DIR, register_resolvers

register_resolvers()


def main() -> dict[str, float] | None:
    with interrupted_exit(lambda run_dir: ""):
        return _main()


@hydra.main(config_path=str(CONFIG_DIR), config_name="eval", version_base="1.3")
def _main(cfg: DictConfig) -> dict[str, float]:
    from litlab.run import evaluate

    try:
        return evaluate(cfg)
    except LitlabError as err:
        discard_refused_run(cfg, own_dir=True)
        sys.exit(f"litlab: error: {err}")


if __name__ == "__main__":
    main()
