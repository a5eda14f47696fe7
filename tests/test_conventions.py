"""The conventions a user checks first: a license that matches the metadata, one version, hooks
and a hosted CI that run the same checks as ``make lint`` and ``.ci/run``."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import litlab

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _lint_commands() -> list[str]:
    """The commands of the Makefile's lint recipe, without the venv's bin/ prefix."""
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    return [line.strip().removeprefix("$(BIN)/") for line in recipe.group(1).splitlines()]


def test_the_license_file_matches_the_metadata():
    assert PYPROJECT["license"] == "MIT" and PYPROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_one_version_shown_by_every_command():
    assert "version" in PYPROJECT["dynamic"] and "version" not in PYPROJECT
    assert importlib.metadata.version("litlab") == litlab.__version__
    commands = ("train", "eval", "predict", "export", "compare", "sweep", "new")
    for module in (f"litlab.cli.{name}" for name in commands):
        code = f"import sys; sys.argv = ['x', '--version']; import {module} as m; m.main()"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert proc.stdout == f"litlab {litlab.__version__}\n", (module, proc.stderr[-300:])


def test_pre_commit_runs_the_checks_of_make_lint():
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    entries = [h["entry"] for h in hooks]
    lint = _lint_commands()
    for entry in entries:
        assert any(command.startswith(entry) for command in lint), (entry, lint)
    assert len(entries) == len(lint)


def test_the_hosted_workflow_runs_lint_and_the_ci_script():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = [s.get("run") for job in workflow["jobs"].values() for s in job["steps"]]
    assert "make lint" in steps and "bash .ci/run" in steps


def test_the_package_says_it_is_typed():
    assert (Path(litlab.__file__).parent / "py.typed").is_file()


def test_the_changelog_has_an_unreleased_section_and_the_current_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and f"## [{litlab.__version__}]" in text
