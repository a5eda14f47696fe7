"""The path from the console script to ``trainer.fit`` stays short enough to read in one go."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import lightning as L
import pytest

import litlab
from litlab import LitlabError
from litlab.cli import train

PACKAGE = Path(litlab.__file__).resolve().parent


def test_litlab_train_reaches_trainer_fit_in_three_frames(tmp_path, monkeypatch):
    seen = []

    def fit(self, *args, **kwargs):
        seen.extend(
            f"{Path(f.filename).resolve().relative_to(PACKAGE)}:{f.function}"
            for f in reversed(inspect.stack())
            if Path(f.filename).resolve().is_relative_to(PACKAGE)
        )
        raise LitlabError("stopped at trainer.fit")

    monkeypatch.setattr(L.Trainer, "fit", fit)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["litlab-train", "experiment=linear", "logger=none"])
    with pytest.raises(SystemExit, match="stopped at trainer.fit"):
        train.main()
    assert seen == ["cli/train.py:main", "cli/train.py:_main", "run/fit.py:fit_and_test"]
