"""Where the commands read and write (issue 21): run dirs under paths with a space and letters
outside ASCII (item 11)."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from litlab import Interrupted
from litlab.cli import train
from litlab.cli.common import interrupted_exit, path_override, quote_paths
from litlab.config import compose_config
from tests.conftest import run_cli

ODD = "dir with space/ünïcödé"  # a space, and letters Hydra's grammar refuses unquoted


# Item 11: paths with spaces and letters outside ASCII.


def test_the_printed_continue_command_names_the_run_for_bash_and_hydra(tmp_path, capsys):
    run_dir = tmp_path / ODD / "run"
    with pytest.raises(SystemExit) as end, interrupted_exit(train._continue_command):
        raise Interrupted(str(run_dir))
    assert end.value.code == 130
    printed = capsys.readouterr().err.split("Continue it with: ")[1].strip()
    argv = shlex.split(printed)  # what bash hands over
    assert argv[0] == "litlab-train" and len(argv) == 2
    assert compose_config(argv[1:], tmp_path / "out").ckpt_path == str(run_dir)
    # A path Hydra reads as it is stays as it is.
    assert (
        train._continue_command("/logs/linear/runs/x")
        == "litlab-train ckpt_path=/logs/linear/runs/x"
    )


@pytest.mark.parametrize(
    "path", [f"/r/{ODD}", "/r/a,b", '/r/say "hi"', "/r/it's", "/r/it's \"both\"", "/r/(1)#[x]=y",
             "/r/trailing ", "/r/back\\slash\\", "null", "12"]
)  # fmt: skip
def test_a_path_override_reads_back_the_path_unchanged(path):
    (arg,) = shlex.split(shlex.join([path_override("ckpt_path", path)]))  # through the shell
    assert OverridesParser.create().parse_override(arg).value() == path


def test_only_the_paths_hydra_cannot_read_are_quoted():
    typed = [
        f"ckpt_path=/r/{ODD}",
        "output=p.csv",
        "model.note=ü",
        "seed=1,2",
        f"+init_from=/{ODD}",
    ]
    assert quote_paths(typed) == [
        f'ckpt_path="/r/{ODD}"', "output=p.csv", "model.note=ü", "seed=1,2", f'+init_from="/{ODD}"'
    ]  # fmt: skip


def test_a_run_dir_path_as_bash_hands_it_over_is_accepted(command, trained, tmp_path):
    run_dir = tmp_path / ODD / "run"
    shutil.copytree(trained("logistic"), run_dir)
    assert command("litlab-eval", f"ckpt_path={run_dir}") is None  # Hydra refused it before
    (record,) = (tmp_path / "logs" / "eval" / "runs").glob("*/eval.json")
    assert json.loads(record.read_text())["checkpoint"]["path"].startswith(str(run_dir))


@pytest.mark.slow
def test_every_command_names_a_run_under_such_a_path(tmp_path):
    """The whole way, as a user types it: train into LITLAB_LOG_DIR="dir with space/ünïcödé",
    then continue it with the command litlab prints, evaluate, predict and export it."""
    env = {"LITLAB_LOG_DIR": str(tmp_path / ODD)}
    quick = ["experiment=linear", "trainer.max_epochs=1", "logger=csv"]
    run_cli("litlab-train", *quick, "callbacks.progress_bar.refresh_rate=0", cwd=tmp_path, env=env)
    (run_dir,) = (tmp_path / ODD / "linear" / "runs").iterdir()
    tool, *args = shlex.split(train._continue_command(str(run_dir)))
    run_cli(tool, *args, "trainer.max_epochs=2", cwd=tmp_path, env=env)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    for tool, *more in (
        ["litlab-eval"],
        ["litlab-predict", f"output={tmp_path / ODD / 'p ü.csv'}"],
        ["litlab-export", "format=torchscript", f"output={tmp_path / ODD / 'm ü.ts'}"],
    ):
        run_cli(tool, f"ckpt_path={run_dir}", *more, cwd=tmp_path, env=env)
    assert (tmp_path / ODD / "p ü.csv").is_file() and (tmp_path / ODD / "m ü.ts").is_file()
