"""Shared test helpers: tiny MNIST files, configs composed in-process, tiny trained runs shared
by the whole session, CLI runs."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lessons.data import stand_in_digits, write_stand_in_mnist
from litlab.config import compose_config

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


# The tests' small MNIST is the lessons' stand-in set (notebooks/lessons/data.py, on pytest's
# pythonpath): one home for writing IDX files.
fake_digits = stand_in_digits


def write_fake_mnist(root: Path, n_train: int = 1200, n_test: int = 300) -> Path:
    return write_stand_in_mnist(root, n_train, n_test)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """The small MNIST: MNIST/raw/ as IDX files, MNIST/png/ as class folders (mnist_folder)."""
    from benchmarks.image_folder import FOLDER, write_png_folders

    root = write_fake_mnist(tmp_path_factory.mktemp("mnist"))
    write_png_folders(root / "MNIST" / "raw", root / FOLDER)
    return root


SMALL_MNIST = [
    "data.val_size=200",
    "data.batch_size=100",
    "data.eval_batch_size=300",
    "data.download=false",
]


@pytest.fixture
def cfg_for(tmp_path, mnist_root):
    """Compose a train config in-process, with the run directory under tmp_path."""

    def make(*overrides: str):
        return compose_config(
            ["callbacks.progress_bar.refresh_rate=0", f"paths.data_dir={mnist_root}", *overrides],
            output_dir=tmp_path / "run",
        )

    return make


# The runs `trained` gives, by name: each experiment trained briefly, MNIST on the small data.
TRAINED = {
    "linear": ["experiment=linear", "trainer.max_epochs=2"],
    "sine": ["experiment=sine", "trainer.max_epochs=2"],
    "logistic": ["experiment=logistic", "trainer.max_epochs=2"],
    "mnist": ["experiment=mnist", *SMALL_MNIST],
}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_root):
    """``trained("mnist")``: the run dir of a tiny trained run of that experiment, trained once
    per session when a test first asks, for every test folder. Tests must not change it."""
    from litlab.run import fit_and_test

    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            out = tmp_path_factory.mktemp(f"run-{name}")
            quiet = ["trainer=cpu", "logger=none", "callbacks.progress_bar.refresh_rate=0"]
            overrides = [*quiet, "callbacks.figures=null", f"paths.data_dir={mnist_root}"]
            fit_and_test(compose_config([*overrides, *TRAINED[name]], output_dir=out))
            runs[name] = out
        return runs[name]

    return get


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """litlab's wheel, built once per session from a copy of the sources (the build leaves
    nothing in the repository). Tests install it elsewhere and must not change it."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("src", "configs", "templates"):
        shutil.copytree(REPO / name, source / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (built,) = (tmp / "dist").glob("litlab-*.whl")
    return built


def run_cli(tool: str, *args: str, cwd: Path, env: dict | None = None, check: bool = True):
    """Run an installed console script the way a user would, quietly, and capture its output."""
    full_env = {**os.environ, "LITLAB_LOG_DIR": str(cwd / "logs"), **(env or {})}
    proc = subprocess.run(
        [str(BIN / tool), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{tool} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def help_without_torch(tool: str, module: str, cwd: Path) -> str:
    """``<tool> --help`` through ``module.main()``; asserts it imported neither torch nor
    Lightning (help must be instant) and returns what it printed."""
    code = (
        f"import sys; sys.argv = ['{tool}', '--help']; import {module} as m; m.main(); "
        "print('loaded:', 'torch' in sys.modules, 'lightning' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    assert proc.stdout.rstrip().endswith("loaded: False False"), proc.stdout[-300:]
    return proc.stdout


def run_dirs(cwd: Path, name: str) -> list[Path]:
    return sorted((cwd / "logs" / name / "runs").iterdir())


def csv_metrics(run_dir: Path) -> dict[str, float]:
    """The last logged value of every metric in a run's CSV log."""
    last: dict[str, float] = {}
    with open(run_dir / "csv" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            last.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return last


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The final metrics a run recorded in its manifest (any logger, or none)."""
    return json.loads((run_dir / "run.json").read_text())["metrics"]


def assert_resume_is_exact(cfg_for, *args: str) -> None:
    """Two epochs straight, and one epoch then a resume from its checkpoint, end with the same
    weights, bit for bit (a CPU promise)."""
    from litlab.run import fit_and_test

    args = (
        *args,
        "trainer.max_epochs=2",
        "callbacks.model_checkpoint.save_top_k=-1",
        "callbacks.model_checkpoint.filename='epoch{epoch}'",
        "test=false",
    )
    full = fit_and_test(cfg_for(*args))
    after_one = full.trainer.checkpoint_callback.dirpath + "/epoch0.ckpt"
    resumed = fit_and_test(cfg_for(*args, f"ckpt_path={after_one}"))
    pairs = zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
