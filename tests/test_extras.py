"""The extras: each option that needs a package outside the base dependencies is refused in one
line naming its extra when the package is missing."""

import sys
from pathlib import Path

import pytest

from litlab import LitlabError
from litlab.config import check_config, compose_config
from litlab.config.extras import EXTRAS

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRA_NAMES = set(PROJECT["optional-dependencies"])


def refusal(option: str) -> str:
    """The line litlab ends with when ``option``'s package is missing."""
    module, extra = EXTRAS[option]
    return f"{option} needs {module.split('.')[-1]}: pip install 'litlab[{extra}]'"


def test_every_option_names_an_extra_of_pyproject():
    assert {extra for _, extra in EXTRAS.values()} <= EXTRA_NAMES - {"dev"}


def test_a_logger_without_its_package_is_refused_before_the_run_in_one_line(monkeypatch):
    cfg = compose_config(["experiment=linear", "logger=many"])  # csv, tensorboard, wandb
    check_config(cfg)  # [dev] installs tensorboard
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(LitlabError) as err:
        check_config(cfg)
    assert str(err.value) == refusal("logger=tensorboard")
    check_config(compose_config(["experiment=linear", "logger=many", "logger.tensorboard=null"]))


def test_the_slurm_launcher_without_its_plugin_is_refused_before_hydra(monkeypatch, tmp_path):
    from litlab.cli.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_submitit_launcher", None)
    monkeypatch.setattr(sys, "argv", ["litlab-train", "-m", "hydra/launcher=slurm"])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == f"litlab: error: {refusal('hydra/launcher=slurm')}"
    assert not list(tmp_path.iterdir())  # Hydra never started: no run dir, no log


def test_onnx_export_without_onnxscript_is_refused_before_the_checkpoint_is_read(
    monkeypatch, tmp_path
):
    from litlab.inference.export import export_model

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(LitlabError) as err:  # not "no checkpoint at ...": it is never opened
        export_model(tmp_path / "missing.ckpt", "onnx", tmp_path / "model.onnx")
    assert str(err.value) == refusal("format=onnx")


def test_a_postgresql_storage_without_its_driver_names_the_extra(monkeypatch):
    from litlab.sweep.storage import check_driver

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(LitlabError, match=r"pip install 'litlab\[postgres\]'") as err:
        check_driver("postgresql://optuna@localhost:5432/optuna")
    assert len(str(err.value).splitlines()) == 1
