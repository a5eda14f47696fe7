"""A new task added the way README's "Adding a task" says, from templates/task/, trained end to
end by litlab-train: fit, test, pictures, and a checkpoint that loads back."""

from __future__ import annotations

import copy
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import litlab
import litlab.config
from litlab import LitlabError
from litlab.config import CONFIG_DIR, check_config, compose_config
from litlab.run import fit_and_test
from tests.config.test_bad_input import unguarded_keys
from tests.conftest import final_metrics, run_cli, run_dirs

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "task"


def add_task(name: str, code: Path, configs: Path) -> None:
    """README's recipe: the two modules copied where Python imports them, the three configs
    copied into the config folders, the template's names replaced by the task's."""
    code.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATES / "data.py", code / f"{name}_data.py")
    shutil.copy(TEMPLATES / "model.py", code / f"{name}_model.py")
    for kind, group in (("data", "data"), ("model", "model"), ("experiment", "experiment")):
        text = (TEMPLATES / f"{kind}.yaml").read_text()
        # Here the modules live outside the package: their import paths change with them.
        text = text.replace("litlab.data.mytask", f"{name}_data")
        text = text.replace("litlab.models.mytask", f"{name}_model")
        text = text.replace("mytask", name)
        (configs / group / f"{name}.yaml").write_text(text)


def test_a_task_from_the_templates_trains_tests_and_reloads(tmp_path, monkeypatch):
    configs, code = tmp_path / "configs", tmp_path / "code"
    shutil.copytree(CONFIG_DIR, configs)
    add_task("sectors", code, configs)

    run_cli(
        "litlab-train",
        "--config-dir",
        str(configs),
        "experiment=sectors",
        "logger=csv",
        "trainer=cpu",
        "callbacks.progress_bar.refresh_rate=0",
        cwd=tmp_path,
        env={"PYTHONPATH": str(code)},
    )
    (run_dir,) = run_dirs(tmp_path, "sectors")
    assert final_metrics(run_dir)["test/acc"] > 0.9
    assert (run_dir / "figures" / "confusion_matrix.png").stat().st_size > 1000

    best = run_dir / "checkpoints" / "best.ckpt"
    ckpt = torch.load(best, weights_only=True)  # a bare save_hyperparameters() kept it plain
    assert ckpt["hyper_parameters"] == {
        "in_features": 2,
        "hidden_size": 32,
        "num_classes": 3,
        "scheduler_interval": "step",
    }

    monkeypatch.syspath_prepend(str(code))
    # Outside litlab, the task's packages are trusted in a checkpoint once the user names them.
    monkeypatch.setenv("LITLAB_TRUSTED_PACKAGES", "sectors_data,sectors_model")
    model, datamodule = litlab.load(run_dir, datamodule=True)
    assert type(model).__name__ == "MyClassifier" and not model.training
    x, y, out = model.predict_split(datamodule, "test")
    assert (out.argmax(-1) == y).float().mean() > 0.9


def test_a_new_task_brings_its_own_range_checks(tmp_path, monkeypatch):
    """With no edit in src/litlab/: the template's signatures guard every number it adds, and
    a value out of range is refused in one line naming the key and its range."""
    configs, code = tmp_path / "configs", tmp_path / "code"
    shutil.copytree(CONFIG_DIR, configs)
    add_task("sectors", code, configs)
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setattr(litlab.config, "CONFIG_DIR", configs)
    base = compose_config(["experiment=sectors"], output_dir=tmp_path / "run")
    assert not unguarded_keys(base)
    for key, bad, allowed in (
        ("model.hidden_size", 0, "an integer >= 1"),
        ("data.num_classes", 1, "an integer >= 2"),
        ("data.num_val", 1.5, "an integer >= 1"),
    ):
        cfg = copy.deepcopy(base)
        OmegaConf.update(cfg, key, bad)
        with pytest.raises(LitlabError) as err:
            check_config(cfg)
        assert str(err.value) == f"{key}={bad} is not allowed: {allowed}."


def test_the_readme_commands_as_written(tmp_path, monkeypatch):
    """The templates unchanged, where README's ``cp`` lines put them: the modules as
    ``litlab.data.mytask`` and ``litlab.models.mytask``, the configs under their group."""
    for package, source in (("data", "data.py"), ("models", "model.py")):
        name = f"litlab.{package}.mytask"
        spec = importlib.util.spec_from_file_location(name, TEMPLATES / source)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        spec.loader.exec_module(module)
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs)
    for kind in ("data", "model", "experiment"):
        shutil.copy(TEMPLATES / f"{kind}.yaml", configs / kind / "mytask.yaml")
    monkeypatch.setattr(litlab.config, "CONFIG_DIR", configs)

    cfg = compose_config(
        [
            "experiment=mytask",
            "logger=none",
            "trainer=cpu",
            "callbacks.progress_bar.refresh_rate=0",
        ],
        output_dir=tmp_path / "run",
    )
    run = fit_and_test(cfg)
    assert run.metrics["test/acc"] > 0.9
    assert type(run.model).__module__ == "litlab.models.mytask"
