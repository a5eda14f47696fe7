"""``litlab new DIR``: a research project of one's own, outside litlab's package, whose configs
litlab's commands read on top of their own (``litlab.config.project``) and whose tests reuse
``litlab.testing``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import litlab
from litlab import LitlabError
from litlab.cli import new
from litlab.config import CONFIG_DIR, compose_config
from litlab.config.project import project_configs, project_trusted
from tests.conftest import final_metrics, help_without_torch, run_cli, run_dirs
from tests.data import test_folder, test_table

FILES = {
    ".gitignore",
    "Makefile",
    "README.md",
    "pyproject.toml",
    "configs/data/sectors.yaml",
    "configs/experiment/sectors.yaml",
    "configs/hparams_search/sectors.yaml",
    "configs/model/sectors.yaml",
    "src/sectors/__init__.py",
    "src/sectors/data.py",
    "src/sectors/model.py",
    "tests/test_sectors.py",
}


def make_project(root: Path, *args: str) -> Path:
    new.main(["new", str(root), *args])
    return root


def test_new_writes_the_project_with_its_name_everywhere(tmp_path):
    project = make_project(tmp_path / "sectors")
    written = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}
    assert written == FILES
    texts = {name: (project / name).read_text() for name in written}
    assert not [n for n, t in texts.items() if "mytask" in t or "TEMPLATE" in t]
    assert "_target_: sectors.data.MyDataModule" in texts["configs/data/sectors.yaml"]
    assert "_target_: sectors.model.MyClassifier" in texts["configs/model/sectors.yaml"]
    assert "override /data: sectors" in texts["configs/experiment/sectors.yaml"]
    assert texts["configs/experiment/sectors.yaml"].startswith("# @package _global_\n")
    assert 'dependencies = ["litlab"]' in texts["pyproject.toml"]
    assert project_configs(project / "src" / "sectors") == project / "configs"
    # A checkpoint of the project's own task may be rebuilt (litlab-eval, -predict, load).
    assert project_trusted(project / "src" / "sectors") == ["sectors"]


def test_new_takes_a_name_and_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    project = make_project(tmp_path / "empty", "--name", "blobs2")
    assert (project / "src" / "blobs2" / "model.py").is_file()


@pytest.mark.parametrize(
    ("folder", "args", "error"),
    [
        ("full", [], "full exists and is not empty: give a new or empty folder."),
        ("my-work", [], "'my-work' is not a valid Python package name: give one with --name."),
        ("x", ["--name", "class"], "'class' is not a valid Python package name"),
        ("x", ["--name", "torch"], "a module named 'torch' is importable already"),
    ],
)
def test_new_refuses_in_one_line(tmp_path, capsys, folder, args, error):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_:
        new.main(["new", str(tmp_path / folder), *args])
    assert str(exit_.value).startswith("litlab: error: ") and error in str(exit_.value)
    assert "\n" not in str(exit_.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing written
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_the_project_configs_come_first_and_litlabs_presets_stay(tmp_path, monkeypatch):
    project = make_project(tmp_path / "sectors")
    # A file of the project's shadows litlab's of the same name.
    (project / "configs" / "trainer").mkdir()
    mine = (CONFIG_DIR / "trainer" / "cpu.yaml").read_text() + "gradient_clip_val: 0.5\n"
    (project / "configs" / "trainer" / "cpu.yaml").write_text(mine)
    monkeypatch.chdir(project / "src")  # found from below the project's root too
    cfg = compose_config(["experiment=sectors", "trainer=cpu", "logger=csv", "debug=limit"])
    assert cfg.data._target_ == "sectors.data.MyDataModule"
    assert cfg.monitor.metric == "val/acc"  # the project's experiment
    assert cfg.trainer.gradient_clip_val == 0.5  # the project's trainer/cpu.yaml
    assert "csv" in cfg.logger  # litlab's logger preset
    assert cfg.trainer.limit_train_batches == 5  # litlab's debug preset
    usage = help_without_torch("litlab-train", "litlab.cli.train", cwd=project)
    (line,) = [line for line in usage.splitlines() if line.startswith("  experiment ")]
    assert {"sectors,", "mnist,", "linear,"} <= set(line.split())  # the project's beside litlab's


def test_no_project_no_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert project_configs() is None
    (tmp_path / "pyproject.toml").write_text('[tool.litlab]\nconfigs = "nowhere"\n')
    with pytest.raises(LitlabError, match=r"configs = 'nowhere' is no folder"):
        project_configs()
    with pytest.raises(SystemExit, match=r"^litlab: error: .* configs = 'nowhere' is no folder"):
        compose_config([])  # as every command composes its config


def _env(project: Path) -> dict[str, str]:
    """The project importable next to litlab, as `pip install -e .` would make it."""
    return {"PYTHONPATH": os.pathsep.join([str(project / "src"), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_every_command_runs_in_a_new_project(tmp_path, monkeypatch):
    project = make_project(tmp_path / "sectors")
    env = _env(project)
    quiet = ["logger=csv", "trainer=cpu", "callbacks.progress_bar.refresh_rate=0"]

    run_cli(
        "litlab-train", "experiment=sectors", "trainer.max_epochs=3", *quiet, cwd=project, env=env
    )
    (run_dir,) = run_dirs(project, "sectors")
    assert final_metrics(run_dir)["test/acc"] > 0.9
    assert torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]

    grid = ["-m", "experiment=sectors", "model.hidden_size=8,16", "trainer.max_epochs=1"]
    run_cli("litlab-train", *grid, *quiet, cwd=project, env=env)
    (multirun,) = (project / "logs" / "sectors" / "multiruns").iterdir()
    assert {p.name for p in multirun.iterdir()} >= {"0", "1"}

    sweep = ["experiment=sectors", "hparams_search=sectors", "hparams_search.n_trials=2"]
    out = run_cli("litlab-sweep", *sweep, "trainer.max_epochs=1", *quiet, cwd=project, env=env)
    assert "sweep results:" in out.stdout

    run_cli("litlab-eval", f"ckpt_path={run_dir}", "trainer=cpu", cwd=project, env=env)
    (eval_dir,) = (project / "logs" / "eval" / "runs").iterdir()
    assert json.loads((eval_dir / "eval.json").read_text())["metrics"]["test/acc"] > 0.9

    out = run_cli("litlab-predict", f"ckpt_path={run_dir}", "trainer=cpu", cwd=project, env=env)
    assert "1000 predictions written" in out.stdout
    fmt = ["format=exported_program", f"output={tmp_path / 'model.pt2'}"]
    run_cli("litlab-export", f"ckpt_path={run_dir}", *fmt, cwd=project, env=env)
    assert json.loads((tmp_path / "model.pt2.json").read_text())["input"]["shape"] == ["batch", 2]

    monkeypatch.syspath_prepend(str(project / "src"))
    monkeypatch.chdir(project)  # as in the project's notebooks: its pyproject trusts its package
    model = litlab.load(run_dir)
    assert type(model).__module__ == "sectors.model"

    # The project's own tests (litlab.testing's checks), as `make test` runs them.
    pytest_ = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        pytest_, cwd=project, env={**os.environ, **env}, capture_output=True, text=True
    )
    assert proc.returncode == 0 and "5 passed" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.slow
def test_litlabs_on_disk_data_in_a_new_project(tmp_path):
    """In a new project, litlab's image-folder and table data modules on a tiny folder of PNGs
    and a tiny CSV: train (figures drawn), eval, predict and export each run."""
    project = make_project(tmp_path / "ondisk")  # not sectors: imported by the test above
    env = _env(project)
    images = test_folder.write_folders(project / "data" / "images")
    table = project / "data" / "line"
    test_table.write_csv(table / "line.csv", test_table.line_rows(80))
    tiny = {  # the data modules' own tests' settings, with a CSV log and DataLoaders in-process
        "mnist_folder": [*test_folder.TINY, f"data.data_dir={images}", "trainer.max_epochs=1"],
        "linear": [*test_table.TINY, f"data.data_dir={table}", "trainer.max_epochs=5"],
    }
    for i, (name, args) in enumerate(tiny.items()):
        args = [a for a in args if not a.startswith(("logger=", "callbacks.figures"))]
        quiet = ["logger=csv", "data.num_workers=0", "callbacks.progress_bar.refresh_rate=0"]
        run_cli("litlab-train", *args, *quiet, cwd=project, env=env)
        (run_dir,) = run_dirs(project, name)
        assert "test/loss" in final_metrics(run_dir)
        assert (run_dir / "csv" / "metrics.csv").is_file() and any(run_dir.glob("figures/*.png"))

        run_cli("litlab-eval", f"ckpt_path={run_dir}", "trainer=cpu", cwd=project, env=env)
        evals = sorted((project / "logs" / "eval" / "runs").iterdir())
        assert "test/loss" in json.loads((evals[i] / "eval.json").read_text())["metrics"]
        out = run_cli("litlab-predict", f"ckpt_path={run_dir}", "trainer=cpu", cwd=project, env=env)
        assert f"{12 if name == 'mnist_folder' else 20} predictions written" in out.stdout
        fmt = ["format=exported_program", f"output={tmp_path / name}.pt2"]
        run_cli("litlab-export", f"ckpt_path={run_dir}", *fmt, cwd=project, env=env)
        shape = json.loads((tmp_path / f"{name}.pt2.json").read_text())["input"]["shape"]
        assert shape == (["batch", 1, 8, 8] if name == "mnist_folder" else ["batch", 1])
