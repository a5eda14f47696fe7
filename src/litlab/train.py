"""``litlab-train``: compose a config with Hydra, then fit and test (see ``litlab.run``)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.config import CONFIG_DIR, register_resolvers

register_resolvers()


@hydra.main(config_path=str(CONFIG_DIR), config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from litlab.run import train  # torch and Lightning load only once a run really starts

    try:
        return train(cfg)
    except LitlabError as err:
        sys.exit(f"litlab: error: {err}")


if __name__ == "__main__":
    main()
