"""``litlab-sweep --wandb``: the same space as a W&B Sweeps config whose every draw composes."""

from __future__ import annotations

import random

import pytest
import yaml
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.cli.sweep import run as sweep
from litlab.config import CONFIG_DIR, check_targets, compose_config


def wandb_draws(param: dict, rng: random.Random) -> list:
    """The values W&B can hand the command for one parameter: both ends and random draws."""
    if "value" in param:
        return [param["value"]]
    if "values" in param:
        return param["values"]
    lo, hi = param["min"], param["max"]
    if param["distribution"] == "int_uniform":
        return [lo, hi, rng.randint(lo, hi)]
    return [lo, hi, rng.uniform(lo, hi)]


@pytest.mark.parametrize("experiment", ["linear", "logistic"])
def test_wandb_sweep_yaml_parses_and_every_draw_composes(workdir, experiment):
    out = workdir / "sweep.yaml"
    sweep([f"experiment={experiment}", f"hparams_search={experiment}", "--wandb", str(out)])
    config = yaml.safe_load(out.read_text())
    space_cfg = OmegaConf.load(CONFIG_DIR / "hparams_search" / f"{experiment}.yaml")
    assert set(config["parameters"]) == set(space_cfg.params)
    assert config["metric"]["goal"] in ("minimize", "maximize") and config["method"] == "bayes"
    command = config["command"]
    assert command[:4] == ["${env}", "${interpreter}", "-m", "litlab.cli.train"]
    assert command[-1] == "${args_no_hyphens}"
    fixed = command[4:-1]
    assert f"experiment={experiment}" in fixed

    rng = random.Random(0)
    draws = {k: wandb_draws(v, rng) for k, v in config["parameters"].items()}
    for i in range(max(len(v) for v in draws.values())):
        chosen = {k: v[i % len(v)] for k, v in draws.items()}
        # What the agent passes: ${args_no_hyphens} is f"{key}={value}" for each parameter.
        args = [f"{k}={v}" for k, v in chosen.items()]
        cfg = compose_config([*fixed, *args], output_dir=workdir / "run")
        check_targets(cfg)
        for key, value in chosen.items():
            assert OmegaConf.select(cfg, key) == pytest.approx(value), key
        assert cfg.logger.wandb.mode == "online"


def test_wandb_export_refuses_a_space_it_cannot_express(workdir):
    with pytest.raises(LitlabError, match="no W&B equivalent"):
        sweep(
            [
                "experiment=logistic",
                "hparams_search=logistic",
                '+hparams_search.params.model.hidden_size="tag(int, log, interval(2, 64))"',
                "--wandb",
                str(workdir / "x.yaml"),
            ]
        )
