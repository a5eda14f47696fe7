"""Every command loads torch and Lightning with the cyclic garbage collector paused, then freezes
what they made (``litlab.cli.common.load_torch``): it runs again afterwards, and what a run
makes later is still collected. A command that forgot it, or left the collector off, fails here.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from litlab.cli.common import load_torch

# In a fresh Python: the command's main, then the collector's state. ``paused``: whether the
# collector was off when torch first loaded (an audit hook sees each import as it starts).
PROBE = """
import gc, importlib, sys
paused = []
def hook(event, args):
    if event == "import" and args[0] == "torch" and not paused:
        paused.append(not gc.isenabled())
sys.addaudithook(hook)
sys.argv = {argv!r}
command = importlib.import_module("litlab.cli." + sys.argv[0].removeprefix("litlab-"))
try:
    command.main()
except SystemExit as end:
    assert not end.code, end.code
class Cycle: pass
made_later = Cycle(); made_later.me = made_later; del made_later
print(paused, gc.isenabled(), gc.get_freeze_count(), gc.collect())
"""

QUICK = ["trainer.max_epochs=1", "logger=csv", "callbacks.progress_bar.refresh_rate=0"]
COMMANDS = {
    "train": ["litlab-train", "experiment=linear", *QUICK],
    "eval": ["litlab-eval", "ckpt_path=<run>"],
    "predict": ["litlab-predict", "ckpt_path=<run>", "output=<tmp>/p.csv"],
    "export": ["litlab-export", "ckpt_path=<run>", "format=torchscript"],
    "sweep": [
        "litlab-sweep",
        "experiment=linear",
        "hparams_search=linear",
        "hparams_search.n_trials=1",
        *QUICK,
    ],  # fmt: skip
}


@pytest.mark.parametrize(
    "name", [n if n == "train" else pytest.param(n, marks=pytest.mark.slow) for n in COMMANDS]
)
def test_a_command_loads_torch_with_the_collector_paused_then_frozen(name, tmp_path, trained):
    run = trained("linear") if "ckpt_path=<run>" in COMMANDS[name] else None
    argv = [a.replace("<run>", str(run)).replace("<tmp>", str(tmp_path)) for a in COMMANDS[name]]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "LITLAB_LOG_DIR": str(tmp_path / "logs")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    paused, enabled, frozen, collected = proc.stdout.splitlines()[-1].rsplit(" ", 3)
    assert paused == "[True]"  # torch loaded with the collector off
    assert enabled == "True"  # and it runs again
    assert int(frozen) > 100_000  # torch's and Lightning's objects, frozen
    assert int(collected) >= 1  # a cycle made afterwards is freed


def test_where_lightning_is_loaded_it_changes_nothing():
    frozen = gc.get_freeze_count()
    load_torch()  # pytest has loaded Lightning: a test calling a command's main
    assert gc.isenabled() and gc.get_freeze_count() == frozen
