"""The console scripts end their process without CPython's teardown (``litlab.cli.scripts``):
nothing a normal exit would finish is lost, and the status is the one a normal exit gives."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import pytest

import litlab.cli.scripts

MAIN = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from litlab.cli.scripts import console

out = Path(sys.argv[1])
POOL = ThreadPoolExecutor(1)  # as loky's in a parallel grid: told to stop by threading's exit

def late_write():  # a non-daemon thread still working when main returns
    time.sleep(0.3)
    out.joinpath("thread").write_text("done")

def main():
    atexit.register(lambda: out.joinpath("atexit").write_text(str(out.joinpath("thread").exists())))
    threading.Thread(target=late_write).start()
    POOL.submit(print, end="")  # never shut down: its worker waits for more work
    print("buffered, no newline", end="")
    {end}

console(main)
"""


@pytest.mark.parametrize(
    ("end", "status", "stderr"),
    [
        ("return 3.5", 0, ""),  # what main returns is not a status (litlab-train's is a metric)
        ("sys.exit(130)", 130, ""),
        ("sys.exit()", 0, ""),
        ("sys.exit('litlab: error: bad')", 1, "litlab: error: bad\n"),
    ],
)
def test_a_console_script_ends_as_a_normal_exit_would(tmp_path, end, status, stderr):
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(MAIN).format(end=end))
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert (proc.returncode, proc.stderr) == (status, stderr)
    assert proc.stdout == "buffered, no newline"  # flushed
    assert (tmp_path / "thread").read_text() == "done"  # joined before the atexit handlers
    assert (tmp_path / "atexit").read_text() == "True"  # which ran


def test_an_uncaught_error_keeps_its_traceback(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("from litlab.cli.scripts import console\nconsole(lambda: 1 / 0)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 1 and "ZeroDivisionError" in proc.stderr


def test_every_command_that_loads_torch_is_installed_through_console():
    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    for command in ("train", "eval", "predict", "export", "sweep"):
        assert scripts[f"litlab-{command}"] == f"litlab.cli.scripts:{command}"
        assert callable(getattr(litlab.cli.scripts, command))
