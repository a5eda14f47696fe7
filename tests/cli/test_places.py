"""Where the commands read and write (issue 21): run dirs under paths with a space and letters
outside ASCII (item 11), places they cannot write to (item 12), and no run dir left holding
nothing but Hydra's own files (item 18)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from litlab import Interrupted, LitlabError
from litlab.cli import compare, train
from litlab.cli.common import interrupted_exit, path_override, quote_paths
from litlab.config import compose_config
from litlab.files import check_writable, write_atomic
from tests.conftest import run_cli

ODD = "dir with space/ünïcödé"  # a space, and letters Hydra's grammar refuses unquoted


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


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
    typed = [f"ckpt_path=/r/{ODD}", "output=p.csv", "input=null", "model.note=ü", "seed=1,2"]
    assert quote_paths(typed) == [f'ckpt_path="/r/{ODD}"', *typed[1:]]
    assert quote_paths([f"+init_from=/{ODD}"]) == [f'+init_from="/{ODD}"']


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


# Item 12: places a command cannot write to end it in one line that says what to do.


def test_a_write_into_a_file_s_folder_is_one_line_and_leaves_nothing(tmp_path):
    """The clean-up of a failed atomic write raised in turn (unlink in a folder that is a file,
    or on a read-only filesystem), a traceback instead of the line."""
    (tmp_path / "afile").write_text("")
    with pytest.raises(LitlabError, match=r"^Could not write .*afile/x\.csv: "):
        write_atomic(tmp_path / "afile" / "x.csv", lambda f: f.write(b"x"))
    with pytest.raises(LitlabError, match=r"afile is a file\): do this$"):
        check_writable(tmp_path / "afile" / "sub", "do this")
    check_writable(tmp_path / "new" / "sub", "do this")
    assert not (tmp_path / "new").exists()  # checked, not made


LOG_DIR_LINE = (
    r"litlab: error: cannot write to {}/\S+ \(.+\): "
    r"point LITLAB_LOG_DIR \(or paths.log_dir=...\) at a folder you can write to"
)


COMMANDS = {
    "train": ["litlab-train", "experiment=linear"],
    "grid": ["litlab-train", "-m", "experiment=linear", "seed=1,2"],
    **{tool: [f"litlab-{tool}", "ckpt_path=<run>"] for tool in ("eval", "predict", "export")},
}


@pytest.mark.parametrize("case", COMMANDS)
def test_a_log_dir_that_is_a_file_is_one_line(case, command, trained, tmp_path, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("LITLAB_LOG_DIR", str(afile))
    end = command(*(a.replace("<run>", str(trained("linear"))) for a in COMMANDS[case]))
    assert re.fullmatch(LOG_DIR_LINE.format(re.escape(str(afile))), str(end.code))
    assert f"({afile} is a file)" in end.code and afile.read_text() == ""


def test_a_read_only_log_dir_is_one_line(command, read_only, tmp_path, monkeypatch):
    logs = read_only(tmp_path / "read-only")
    monkeypatch.setenv("LITLAB_LOG_DIR", str(logs))
    end = command("litlab-train", "experiment=linear")
    assert re.fullmatch(LOG_DIR_LINE.format(re.escape(str(logs))), str(end.code))


# A folder whose path holds "${": Hydra stores a run dir as a string and reads it back as config,
# "${b}" as an interpolation; Optuna formats its SQLite URL with str.format. Both were tracebacks.
NO_DOLLAR = r"point LITLAB_LOG_DIR \(or paths.log_dir=...\) at a folder whose path has no '\$\{'"


@pytest.mark.parametrize("case", COMMANDS)
def test_a_log_dir_holding_dollar_brace_is_one_line(case, command, trained, tmp_path, monkeypatch):
    logs = tmp_path / "a${b}"
    monkeypatch.setenv("LITLAB_LOG_DIR", str(logs))
    end = command(*(a.replace("<run>", str(trained("linear"))) for a in COMMANDS[case]))
    line = rf"litlab: error: cannot make a run dir in {re.escape(str(logs))}/\S+: {NO_DOLLAR}"
    assert re.fullmatch(line, str(end.code))
    assert not logs.exists()


def test_dollar_brace_typed_in_a_log_dir_or_a_sweep_s_is_one_line(command, tmp_path, monkeypatch):
    end = command("litlab-train", "experiment=linear", f"paths.log_dir={tmp_path}/a${{b}}")
    assert re.fullmatch(
        r"litlab: error: hydra.run.dir cannot be resolved \(InterpolationKeyError: "
        rf"Interpolation key 'b' not found\): {NO_DOLLAR}",
        str(end.code),
    )
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "a${b}"))
    end = command("litlab-sweep", "experiment=linear", "hparams_search=linear")
    assert re.fullmatch(
        rf"litlab-sweep: error: cannot make a sweep in {re.escape(str(tmp_path))}/a\$\{{b\}}/\S+: "
        r"point LITLAB_LOG_DIR \(or hparams_search.dir=...\) at a folder whose path has no '\{' "
        r"or '\}'",
        str(end.code),
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_resume_in_a_read_only_run_dir_is_one_line(command, read_only, trained, tmp_path):
    run_dir = tmp_path / "shared" / "run"
    shutil.copytree(trained("linear"), run_dir)
    read_only(run_dir)
    end = command("litlab-train", f"ckpt_path={run_dir}", "trainer.max_epochs=3")
    assert end.code.startswith(f"litlab: error: cannot write to {run_dir} (")
    assert end.code.endswith("copy the run to a folder you can write to and continue the copy")


OUTPUT_LINE = (
    "litlab: error: cannot write to {} ({}): give output= a file in a folder you can write to"
)


def test_predictions_and_exports_into_a_read_only_folder_are_one_line(
    command, read_only, trained, tmp_path
):
    """Refused before the work starts; no run dir is left either."""
    folder = read_only(tmp_path / "read-only")
    run = f"ckpt_path={trained('linear')}"
    end = command("litlab-predict", run, f"output={folder}/sub/p.csv", "trainer=cpu")
    assert end.code.startswith(f"litlab: error: cannot write to {folder}/sub (")
    for fmt in ("onnx", "torchscript", "exported_program"):
        end = command("litlab-export", run, f"format={fmt}", f"output={folder}/m")
        assert end.code.startswith(f"litlab: error: cannot write to {folder} (")
        assert end.code.endswith("give output= a file in a folder you can write to")
    end = command("litlab-compare", str(trained("linear")), "-o", f"{folder}/c.csv")
    assert end.code.endswith("give -o a file in a folder you can write to")
    assert leftovers(tmp_path / "logs") == [] and leftovers(folder) == []


def test_outputs_in_a_file_s_folder_are_one_line(command, trained, tmp_path):
    """The same refusal wherever the tests run: root may write to any folder, not into a file."""
    afile = tmp_path / "afile"
    afile.write_text("keep")
    run = f"ckpt_path={trained('linear')}"
    end = command("litlab-predict", run, f"output={afile}/p.csv", "trainer=cpu")
    assert end.code == OUTPUT_LINE.format(afile, f"{afile} is a file")
    end = command("litlab-export", run, "format=torchscript", f"output={afile}/m.ts")
    assert end.code == OUTPUT_LINE.format(afile, f"{afile} is a file")
    with pytest.raises(SystemExit) as end:
        compare.main([str(trained("linear")), "-o", f"{afile}/c.csv"])
    assert end.value.code.startswith(f"litlab: error: cannot write to {afile} (")
    assert afile.read_text() == "keep" and leftovers(tmp_path / "logs") == []


# Item 18: no run dir holding nothing but Hydra's files.


def test_ctrl_c_before_the_run_starts_leaves_no_run_dir(command, tmp_path, monkeypatch):
    def stopped(cfg, callbacks=()):
        raise KeyboardInterrupt  # while torch loads, or the data is read for the checks

    monkeypatch.setattr("litlab.run.fit.fit_and_test", stopped)
    assert command("litlab-train", "experiment=linear").code == 130
    assert leftovers(tmp_path / "logs") == []


def test_predict_and_export_with_output_elsewhere_leave_no_run_dir(command, trained, tmp_path):
    run = f"ckpt_path={trained('linear')}"
    assert command("litlab-predict", run, "output=p.csv", "trainer=cpu") is None
    assert command("litlab-export", run, "format=torchscript", "output=m.ts") is None
    assert (tmp_path / "p.csv").is_file() and (tmp_path / "m.ts").is_file()
    assert leftovers(tmp_path / "logs") == []
    # Written in its run dir, the output keeps it.
    assert command("litlab-predict", run, "trainer=cpu") is None
    (kept,) = (tmp_path / "logs" / "predict" / "runs").iterdir()
    assert (kept / "predictions.csv").is_file()
