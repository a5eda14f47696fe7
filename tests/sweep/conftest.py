"""What the sweep tests share: a work dir with its own logs/, reading back tables and studies."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest

from litlab.sweep import optuna_search

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
LINEAR = ["experiment=linear", "hparams_search=linear", *QUIET]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh directory to run in, with logs/ inside it (as run_cli sets for subprocesses)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    return tmp_path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def study_of(overrides: list[str]) -> optuna.Study:
    plan = optuna_search.plan(overrides)
    return optuna.load_study(study_name=plan.name, storage=plan.storage_url)
