"""The same search space as a W&B Sweeps config: ``wandb sweep <file>`` then ``wandb agent <id>``.

The agent runs ``command``: litlab's train entry point with the sweep command's own overrides
and then the sampled parameters as ``key=value`` Hydra overrides (``${args_no_hyphens}``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from litlab.sweep.optuna_search import Sweep

# Optuna sampler -> W&B search method; anything else searches at random.
_METHODS = {"TPESampler": "bayes", "GPSampler": "bayes", "GridSampler": "grid"}


def sweep_config(sweep: Sweep) -> dict[str, Any]:
    """The W&B sweep config for this space: method, metric, parameters and the command."""
    hs = sweep.cfg.hparams_search
    sampler = str((hs.get("sampler") or {}).get("_target_", "")).rsplit(".", 1)[-1]
    method = _METHODS.get(sampler, "random")
    if method == "grid" and any(p.kind == "interval" for p in sweep.space):
        method = "random"  # W&B grids need every parameter discrete
    logger = sweep.cfg.get("logger") or {}
    # W&B Sweeps need the wandb logger, online: the agent reads the metric from the server.
    wandb = [] if "wandb" in logger and logger.wandb else ["logger=wandb"]
    base = [o for o in sweep.base if o.partition("=")[0] not in {p.key for p in sweep.space}]
    return {
        "name": sweep.name,
        "method": method,
        "metric": {"name": sweep.metric, "goal": sweep.direction},
        "parameters": {p.key: p.wandb() for p in sweep.space},
        "command": [
            "${env}",
            "${interpreter}",
            "-m",
            "litlab.cli.train",
            *base,
            *wandb,
            "logger.wandb.mode=online",  # an agent reports to the W&B server
            "${args_no_hyphens}",
        ],
    }


def write(sweep: Sweep, path: str | Path) -> Path:
    """Write the W&B sweep config to ``path`` as YAML; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# W&B sweep written by litlab-sweep --wandb; run: wandb sweep "
        f"{path.name} && wandb agent <entity/project/id>\n"
        + yaml.safe_dump(sweep_config(sweep), sort_keys=False)
    )
    return path
