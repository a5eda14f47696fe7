"""litlab.testing's checks take a run wherever a user's project lies, spaces and non-ASCII
letters in its path included (the overrides they compose are quoted for Hydra)."""

from __future__ import annotations

import shutil

from litlab import testing


def test_check_predict_takes_a_run_under_a_space_and_non_ascii_path(trained, tmp_path):
    run = tmp_path / "dir with space" / "ünïcödé"
    shutil.copytree(trained("logistic"), run)
    testing.check_predict(run, tmp_path / "out put" / "prédictions.csv")
