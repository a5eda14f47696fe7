"""Which targets litlab builds. A config the user composed (their files, their command line) may
name any; a config read back from a checkpoint, which may have been downloaded, only targets
defined in ``CHECKPOINT_PACKAGES`` or in packages the user names in $LITLAB_TRUSTED_PACKAGES.
The same on Hydra 1.3 and 1.4 (CI runs tests/config against the newest Hydra as well)."""

import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import litlab
from litlab import LitlabError
from litlab.config import compose_config
from litlab.run.build import TRUSTED_ENV, build, saved_config
from litlab.run.checkpoints import KEY, open_checkpoint
from litlab.run.evaluation import plan_eval

MODEL = {
    "_target_": "litlab.models.PolynomialRegression",
    "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.1},
}
DATA = {"_target_": "litlab.data.LinearDataModule"}


class UsersModel:
    """Stands for a model in the user's own package (here: ``tests.config``)."""


def write_checkpoint(path: Path, model: dict, data: dict = DATA) -> Path:
    config = {"name": "downloaded", "seed": 0, "data": data, "model": model}
    torch.save({"state_dict": {}, KEY: {"config": config}}, path)
    return path


def test_a_checkpoint_builds_only_what_litlab_trusts(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    made = tmp_path / "made"  # what os.makedirs would create, were it called
    untrusted = {
        "os.makedirs": {"_target_": "os.makedirs", "name": str(made)},
        # In litlab by name, in os by definition: where a target is defined counts.
        "litlab.files.os.makedirs": {"_target_": "litlab.files.os.makedirs", "name": str(made)},
        "litlab.files.write_text": {"_target_": "litlab.files.write_text", "path": str(made)},
        # Lightning's loader, reached through a litlab model: not something to build.
        "litlab.models.PolynomialRegression.load_from_checkpoint": {
            "_target_": "litlab.models.PolynomialRegression.load_from_checkpoint",
            "checkpoint_path": str(made),
        },
        # Nested: the optimizer of a litlab model.
        "builtins.exec": {**MODEL, "optimizer": {"_target_": "builtins.exec", "source": "1"}},
    }
    for target, model in untrusted.items():
        path = write_checkpoint(tmp_path / "downloaded.ckpt", model)
        with pytest.raises(LitlabError) as err:
            litlab.load(path)
        message = str(err.value)
        assert "\n" not in message and repr(target) in message and TRUSTED_ENV in message
        assert not made.exists(), target
    # litlab-eval reads checkpoints the same way.
    with pytest.raises(LitlabError, match="builtins.exec"):
        plan_eval(compose_config([f"ckpt_path={path}"], tmp_path / "eval", config_name="eval"))


def test_the_user_names_their_own_packages(tmp_path, monkeypatch):
    model = {**MODEL, "_target_": f"{__name__}.UsersModel"}
    checkpoint = open_checkpoint(write_checkpoint(tmp_path / "own.ckpt", model), prefer="best")
    for named in ("", "tests.conf", "other, tests.config.test_trust_more"):
        monkeypatch.setenv(TRUSTED_ENV, named)
        with pytest.raises(LitlabError, match=f"'{__name__}.UsersModel'"):
            saved_config(checkpoint)
    for named in ("tests", "other, tests.config"):
        monkeypatch.setenv(TRUSTED_ENV, named)
        assert saved_config(checkpoint).model._target_ == f"{__name__}.UsersModel"


def test_a_composed_config_builds_any_target_without_hydras_warning():
    """The user's own config is trusted as their code is: a target outside litlab is built, and
    Hydra 1.4 does not warn that 1.5 will refuse it."""
    node = OmegaConf.create({"_target_": "collections.OrderedDict", "a": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build(node, "thing") == {"a": 1}
