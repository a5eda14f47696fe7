"""What the command tests share: a console script's ``main`` run in this process, and folders
that cannot be written to."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

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


@pytest.fixture
def read_only():
    """``read_only(folder)``: ``folder`` (made if needed) as nobody can write to it, for the
    test's duration. chmod does it for a user; root ignores permissions, so for root the folder
    is made immutable (``chattr +i``); where neither stops a write, the test is skipped."""
    done: list[tuple[Path, bool]] = []

    def make(folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o555)
        immutable = False
        if os.access(folder, os.W_OK) and shutil.which("chattr"):
            proc = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
            immutable = proc.returncode == 0
        done.append((folder, immutable))
        if os.access(folder, os.W_OK):
            pytest.skip("no read-only folder here: root, and chattr +i is refused")
        return folder

    yield make
    for folder, immutable in reversed(done):
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
