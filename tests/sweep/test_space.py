"""The search space: Hydra's sweep syntax read once, values that survive the command line."""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna
import pytest
import yaml
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.cli.sweep import main
from litlab.config import compose_config
from litlab.sweep import space


def test_search_space_reads_hydra_sweep_syntax():
    params = space.parse_space(
        {
            "model.optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
            "data.batch_size": "choice(32, 64, 128)",
            "model": {"degree": "range(1, 6)", "hidden_size": "tag(int, interval(4, 64))"},
            "trainer.max_epochs": 7,
        }
    )
    by_key = {p.key: p for p in params}
    lr, bs = by_key["model.optimizer.lr"], by_key["data.batch_size"]
    assert (lr.kind, lr.low, lr.high, lr.log, lr.integer) == ("interval", 1e-4, 1e-1, True, False)
    assert bs.values == (32, 64, 128)
    degree, hidden = by_key["model.degree"], by_key["model.hidden_size"]
    assert (degree.low, degree.high, degree.step, degree.integer) == (1, 5, 1, True)
    assert hidden.integer and not hidden.log
    assert by_key["trainer.max_epochs"].values == (7,)

    trial = optuna.create_study().ask()
    values = {p.key: p.suggest(trial) for p in params}
    assert 1e-4 <= values["model.optimizer.lr"] <= 1e-1
    assert values["data.batch_size"] in (32, 64, 128) and values["model.degree"] in range(1, 6)
    assert isinstance(values["model.hidden_size"], int) and 4 <= values["model.hidden_size"] <= 64
    assert trial.distributions["model.optimizer.lr"].log
    described = {p.key: p.describe() for p in params}  # what a study records of its space
    assert described == {
        "model.optimizer.lr": "log float in [0.0001, 0.1]",
        "data.batch_size": "choice(32, 64, 128)",
        "model.degree": "int in [1, 5] step 1",
        "model.hidden_size": "int in [4, 64]",
        "trainer.max_epochs": "7",
    }

    with pytest.raises(LitlabError, match="model.lr is given twice"):
        space.parse_space({"model.lr": "choice(1, 2)", "model": {"lr": "choice(3, 4)"}})
    for bad, message in [
        ("interval(1, 0)", "needs low < high"),
        ("tag(log, interval(0, 1))", "positive lower bound"),
        ("tag(fancy, choice(1, 2))", "unknown tag"),
        ("choice(1, 2", "is no Hydra sweep"),
        ([0.1, 0.2], r"\[0.1, 0.2\] is a list; .* write choice\(0.1, 0.2\)"),  # a YAML list
        (OmegaConf.create([0.1, 0.2]), "write choice"),  # hparams_search.params.x=[0.1,0.2]
    ]:
        with pytest.raises(LitlabError, match=message):
            space.parse_param("x", bad)


def test_sampled_values_survive_the_trip_through_the_command_line(tmp_path):
    values = {"model.optimizer.lr": 1e-05, "model.hidden_size": None, "seed": 3}
    overrides = ["experiment=logistic", *(space.override(k, v) for k, v in values.items())]
    cfg = compose_config(overrides, output_dir=tmp_path)
    assert cfg.model.optimizer.lr == 1e-05 and cfg.model.hidden_size is None and cfg.seed == 3
    assert space.format_value("a b") == "'a b'" and space.format_value("null") == "'null'"


# The command in README.md's "Sweeps" section, as a user types it into bash.
README_COMMAND = (
    "litlab-sweep experiment=logistic hparams_search=logistic "
    '+hparams_search.params.model.hidden_size="choice(4, 16)" '
    'hparams_search.params.model.optimizer.lr="tag(log, interval(1e-2, 1.0))" '
    "~hparams_search.params.data.batch_size"
)


def test_the_readme_command_changes_the_space_as_typed_in_bash(workdir):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert README_COMMAND in " ".join(readme.replace("\\\n", " ").split())
    argv = shlex.split(README_COMMAND)  # what bash hands the command: its quotes are gone
    main([*argv[1:], "--wandb", "sweep.yaml"])  # plans the sweep, writes W&B's form, runs nothing
    parameters = yaml.safe_load((workdir / "sweep.yaml").read_text())["parameters"]
    assert parameters == {
        "model.optimizer.lr": {"distribution": "log_uniform_values", "min": 0.01, "max": 1.0},
        "model.hidden_size": {"values": [4, 16]},
    }


def test_space_entries_change_from_the_command_line_by_their_dotted_key():
    params = {"model.optimizer.lr": "interval(0.1, 1)", "data": {"batch_size": "choice(8, 16)"}}
    changed = space.apply_overrides(
        params,
        [
            "hparams_search.params.model.optimizer.lr=choice(0.1, 0.2)",  # bash took the quotes
            "hparams_search.params.data.batch_size='range(1, 4)'",  # quoted: the same
            "++hparams_search.params.trainer.max_epochs=3",
            "+hparams_search.params.model.dropout=interval(0, 0.5)",
        ],
    )
    assert changed == {
        "model.optimizer.lr": "choice(0.1, 0.2)",
        "data.batch_size": "range(1, 4)",
        "trainer.max_epochs": 3,
        "model.dropout": "interval(0, 0.5)",
    }
    assert space.apply_overrides(changed, ["~hparams_search.params.model.dropout"]).keys() == {
        "model.optimizer.lr", "data.batch_size", "trainer.max_epochs"
    }  # fmt: skip
    for bad, message in [
        ("hparams_search.params.model.lr=1", "has no model.lr .*add one with \\+hparams_search"),
        ("~hparams_search.params.model.lr", "has no model.lr"),
        ("+hparams_search.params.model.optimizer.lr=1", "has model.optimizer.lr already"),
        ("hparams_search.params.model.optimizer.lr=choice(1", "is no Hydra override"),
    ]:
        with pytest.raises(LitlabError, match=message):
            space.apply_overrides(params, [bad])
    assert not any(
        map(space.is_space_override, ["hparams_search.n_trials=3", "~hparams_search.params"])
    )
