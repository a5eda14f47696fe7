"""run.json tells the story of a run: how it started, what it measured, how it ended."""

import signal
import socket
import subprocess
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Callback

from litlab import LitlabError
from litlab.run import fit_and_test
from tests.conftest import csv_metrics
from tests.tracking.conftest import manifest


def test_manifest_tells_the_story_of_a_run(cfg_for, tmp_path):
    run = fit_and_test(cfg_for("experiment=logistic", "logger=csv", "trainer.max_epochs=3"))
    m = manifest(tmp_path / "run")
    assert m["status"] == "finished" and m["error"] is None
    assert "experiment=logistic" in m["overrides"] and "logger=csv" in m["overrides"]
    assert m["config"]["model"]["_target_"] == "litlab.models.BinaryClassifier"
    assert m["config"]["paths"]["output_dir"] == str(tmp_path / "run")
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    assert m["git"]["commit"] == head.stdout.strip() and isinstance(m["git"]["dirty"], bool)
    assert m["versions"]["litlab"] == "0.1.0" and m["host"]["hostname"] == socket.gethostname()
    assert m["start_time"] <= m["end_time"]
    assert m["seed"] == 0 and m["parameters"]["total"] == 3
    assert m["metrics"] == pytest.approx(run.metrics)
    assert m["metrics"]["test/acc"] == pytest.approx(csv_metrics(tmp_path / "run")["test/acc"])
    assert {Path(p).name for p in m["checkpoints"].values()} == {"best.ckpt", "last.ckpt"}
    assert all(Path(p).is_file() for p in m["checkpoints"].values())
    assert m["loggers"] == {"CSVLogger": str(tmp_path / "run" / "csv")}
    assert "wandb" not in m


def test_failed_run_records_status_and_message(cfg_for, tmp_path):
    cfg = cfg_for(
        "experiment=linear", "logger=none", "model.optimizer.lr=1e30", "model.scheduler=null"
    )
    with pytest.raises(LitlabError):
        fit_and_test(cfg)
    m = manifest(tmp_path / "run")
    assert m["status"] == "failed" and "NaN or infinite" in m["error"]
    assert m["error"].startswith("litlab.LitlabError: The training loss was NaN")
    assert m["end_time"] is not None


def test_a_config_that_fails_its_checks_leaves_the_run_dir_untouched(cfg_for, tmp_path):
    # Every check runs before anything is written (issue 11): a bad value is one line, and a
    # run dir being resumed keeps its records.
    with pytest.raises(LitlabError, match="takes no argument 'slop'"):
        fit_and_test(cfg_for("experiment=linear", "+data.slop=3"))
    assert not (tmp_path / "run" / "run.json").exists()


def test_missing_data_is_a_failed_run(cfg_for, tmp_path):
    cfg = cfg_for("logger=none", f"paths.data_dir={tmp_path / 'empty'}", "data.download=false")
    with pytest.raises(LitlabError):
        fit_and_test(cfg)
    assert "MNIST could not be read" in manifest(tmp_path / "run")["error"]


class CtrlC(Callback):
    """What pressing Ctrl+C during training does."""

    def on_train_epoch_end(self, trainer, pl_module):
        raise KeyboardInterrupt


def test_interrupted_run_is_recorded_as_such(cfg_for, tmp_path):
    cfg = cfg_for(
        "experiment=linear", "logger=none", "+callbacks.ctrl_c._target_=" + __name__ + ".CtrlC"
    )
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown exits with status 1
            fit_and_test(cfg)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores further Ctrl+C
    assert manifest(tmp_path / "run")["status"] == "interrupted"


def test_packages_are_what_importlib_metadata_reads_and_each_call_gets_its_own_copy():
    """``provenance.packages`` parses only the metadata headers and reads them once per process:
    the same names and versions as ``importlib.metadata`` reading every file in full."""
    import re
    from importlib.metadata import distributions

    from litlab.tracking import provenance

    expected: dict[str, str] = {}
    for dist in distributions():
        if dist.metadata["Name"]:
            expected.setdefault(re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(), dist.version)
    first = provenance.packages()
    assert first == dict(sorted(expected.items()))
    first["torch"] = "changed by a caller"
    assert provenance.packages() == dict(sorted(expected.items()))
