"""The environment and the extras: requirements.lock pins what pyproject.toml asks for, and each
option that needs a package outside the base dependencies is refused in one line naming its
extra when the package is missing."""

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from litlab import LitlabError
from litlab.config import check_config, compose_config
from litlab.config.extras import EXTRAS

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRA_NAMES = set(PROJECT["optional-dependencies"])


def _pins(path: Path) -> dict[str, Version]:
    """A constraints file's ``name==version`` lines, by canonical name."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    pairs = [line.split("==") for line in lines if line]
    return {canonicalize_name(name): Version(version) for name, version in pairs}


def refusal(option: str) -> str:
    """The line litlab ends with when ``option``'s package is missing."""
    module, extra = EXTRAS[option]
    return f"{option} needs {module.split('.')[-1]}: pip install 'litlab[{extra}]'"


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
    lock, torch_pair = _pins(REPO / "requirements.lock"), _pins(REPO / "constraints.txt")
    assert torch_pair.keys() == {"torch", "torchvision"} and not lock.keys() & torch_pair.keys()
    pins = lock | torch_pair
    extras = PROJECT["optional-dependencies"]
    for line in [*PROJECT["dependencies"], *(r for group in extras.values() for r in group)]:
        req = Requirement(line)
        if req.name == "litlab":  # [dev] installs every other extra: the tests use them all
            assert req.extras == EXTRA_NAMES - {"dev"}
            continue
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(pin, prereleases=True), (
            f"{req.name}=={pin} is not {req}: run make lock"
        )


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
