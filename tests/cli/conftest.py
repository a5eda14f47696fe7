"""What the command tests share: a console script's ``main`` run in this process."""

from __future__ import annotations

import importlib
import sys

import pytest


@pytest.fixture
def command(monkeypatch, tmp_path):
    """``command("litlab-eval", "ckpt_path=...")``: the console script's ``main`` in this
    process, run from ``tmp_path`` with its logs in ``tmp_path/logs``; the ``SystemExit`` it
    ended with (``.code``: the status, or the one line it printed), None if it returned."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))

    def run(tool: str, *args: str) -> SystemExit | None:
        module = importlib.import_module(f"litlab.cli.{tool.removeprefix('litlab-')}")
        monkeypatch.setattr(sys, "argv", [tool, *args])
        try:
            module.main()
        except SystemExit as end:
            return end
        return None

    return run
