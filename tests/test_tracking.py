"""Tracking: offline wandb runs, pictures, the run.json manifest, secrets, comparing runs."""

import json
import logging
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from lightning.pytorch.callbacks import Callback
from PIL import Image

from litlab import LitlabError
from litlab.cli.compare import main as compare_main
from litlab.config import compose_config
from litlab.run import fit_and_test
from litlab.tracking import provenance, redaction, wandb_run
from litlab.tracking.compare import read_runs, to_csv, to_frame
from tests.conftest import SMALL_MNIST, csv_metrics, final_metrics, run_cli, run_dirs
from tests.wandb_offline import read_offline_run

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
PICTURES = {
    "linear": ({"fit"}, ["trainer.max_epochs=3"]),
    "sine": ({"fit"}, ["trainer.max_epochs=3"]),
    "logistic": ({"decision_boundary"}, ["trainer.max_epochs=3"]),
    "mnist": ({"confusion_matrix", "misclassified"}, ["trainer.max_epochs=1", *SMALL_MNIST]),
}
SECRET = "s3cr3t-0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def no_wandb_login(monkeypatch, tmp_path):
    """As on CI: no key, no netrc, no WANDB_MODE, so litlab itself must choose offline."""
    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))  # not there (yet)


def manifest(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def assert_picture(path):
    """A real PNG with something drawn on it (a blank canvas has one or two colours)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.width >= 300 and img.height >= 300
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert len(colours) > 50, f"{path} looks blank: {len(colours)} colours"


# --- pictures -----------------------------------------------------------------------------------


@pytest.mark.parametrize("experiment", sorted(PICTURES))
def test_each_experiment_saves_its_pictures(cfg_for, tmp_path, experiment):
    names, quick = PICTURES[experiment]
    run = fit_and_test(cfg_for(f"experiment={experiment}", "logger=none", *quick))
    figures = tmp_path / "run" / "figures"
    assert {p.stem for p in figures.glob("*.png")} == names
    for name in names:
        assert_picture(figures / f"{name}.png")
    assert manifest(tmp_path / "run")["figures"] == sorted(str(p) for p in figures.glob("*.png"))
    assert run.metrics  # the run itself went through


def test_pictures_can_be_switched_off(cfg_for, tmp_path):
    fit_and_test(cfg_for("experiment=linear", "logger=none", "callbacks.figures=null"))
    assert not (tmp_path / "run" / "figures").exists()


# --- wandb --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_default_logger_is_an_offline_wandb_run(tmp_path, mnist_root):
    proc = run_cli(
        "litlab-train", "experiment=logistic", "trainer=cpu", "trainer.max_epochs=3",
        "tags=[a,b]", *QUIET, cwd=tmp_path,
    )  # fmt: skip
    (run_dir,) = run_dirs(tmp_path, "logistic")
    offline = read_offline_run(run_dir)
    # One line, and it says how to upload the run later.
    hints = [line for line in proc.stdout.splitlines() if "wandb sync" in line]
    assert hints == [
        f"wandb: offline run in {offline.dir}; upload it with: wandb sync {offline.dir}"
    ]
    # The resolved config (values, never ${...}) and what litlab adds about the run.
    assert offline.config["model"]["_target_"] == "litlab.models.BinaryClassifier"
    assert offline.config["logger"]["wandb"]["mode"] == "offline"
    assert offline.config["tags"] == ["a", "b"]
    assert "${" not in json.dumps(offline.config)
    info = offline.config["litlab"]
    assert info["overrides"][:3] == ["experiment=logistic", "trainer=cpu", "trainer.max_epochs=3"]
    assert info["parameters"] == {"total": 3, "trainable": 3}
    assert info["hardware"]["accelerator"] == "cpu" and info["hardware"]["precision"] == "32-true"
    assert {"python", "torch", "lightning", "litlab"} <= set(info["versions"])
    assert set(info["git"]) == {"commit", "dirty"}
    # The final metrics, the same as the manifest's, and metrics per epoch in the history.
    metrics = final_metrics(run_dir)
    assert offline.summary["test/acc"] == pytest.approx(metrics["test/acc"])
    assert offline.summary["val/loss"] == pytest.approx(metrics["val/loss"])
    epochs = [h["epoch"] for h in offline.history if "val/loss" in h]
    assert epochs == [0, 1, 2]
    # The picture, as wandb media.
    (picture,) = (offline.dir / "files" / "media" / "images" / "figures").glob("*.png")
    assert picture.name.startswith("decision_boundary")
    assert_picture(picture)
    record = manifest(run_dir)["wandb"]
    assert record["mode"] == "offline" and record["dir"] == str(offline.dir)
    assert (offline.dir / f"run-{record['id']}.wandb").is_file()


def test_resumed_run_continues_the_same_wandb_run(cfg_for, tmp_path):
    first = fit_and_test(cfg_for("experiment=linear", "trainer.max_epochs=2"))
    run_dir = tmp_path / "run"
    run_id = manifest(run_dir)["wandb"]["id"]
    fit_and_test(cfg_for("experiment=linear", "trainer.max_epochs=3", f"ckpt_path={run_dir}"))
    after = manifest(run_dir)
    assert after["wandb"]["id"] == run_id
    offline_dirs = sorted((run_dir / "wandb").glob("offline-run-*"))
    # Two offline segments of one run (synced, they become one): each logs run id run_id.
    logs = [p.name for d in offline_dirs for p in d.glob("run-*.wandb")]
    assert logs == [f"run-{run_id}.wandb"] * 2
    assert [h["status"] for h in after["history"]] == ["finished"]
    assert after["status"] == "finished" and first.trainer.current_epoch == 2


def test_best_checkpoint_is_an_artifact_with_log_model(cfg_for, tmp_path):
    fit_and_test(
        cfg_for("experiment=linear", "trainer.max_epochs=1", "logger.wandb.log_model=true")
    )
    offline = read_offline_run(tmp_path / "run")
    best = [a for a in offline.artifacts if "best" in a.aliases]
    assert best and best[0].type == "model"
    assert any(e.path == "model.ckpt" for e in best[0].manifest.contents)


def test_mode_and_project_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    cfg = compose_config(["logger=wandb"], output_dir=tmp_path)
    assert cfg.logger.wandb.mode == "disabled" and cfg.logger.wandb.project == "from-env"
    cfg = compose_config(
        ["logger.wandb.mode=online", "logger.wandb.project=foo"], output_dir=tmp_path
    )
    assert cfg.logger.wandb.mode == "online" and cfg.logger.wandb.project == "foo"


def test_offline_without_a_key_or_without_a_server(tmp_path, monkeypatch):
    assert wandb_run.wandb_mode() == "offline"  # no key, no netrc
    # A key, but the server refuses the connection: offline, at once.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    (tmp_path / "netrc").write_text(f"machine 127.0.0.1 login user password {SECRET}\n")
    assert wandb_run.has_api_key()
    assert wandb_run.wandb_mode() == "offline"
    # A key and a server that answers: online.
    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert wandb_run.wandb_mode() == "online"


# --- the manifest -------------------------------------------------------------------------------


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


# --- secrets ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_secret_lands_in_the_run_dir(tmp_path):
    env = {"WANDB_API_KEY": SECRET, "HF_TOKEN": SECRET[::-1], "WANDB_MODE": "offline"}
    run_cli(
        "litlab-train", "experiment=linear", "logger=many", "trainer.max_epochs=2", *QUIET,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    files = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    assert len(files) > 15
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data and SECRET[::-1].encode() not in data, path
    # logger=many: every logger wrote, TensorBoard got the picture too.
    (run_dir,) = run_dirs(tmp_path, "linear")
    assert csv_metrics(run_dir)["test/loss"] == pytest.approx(final_metrics(run_dir)["test/loss"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert "figures/fit" in events.Tags()["images"]
    assert read_offline_run(run_dir).summary["test/loss"] == pytest.approx(
        final_metrics(run_dir)["test/loss"]
    )


def test_secret_looking_names_are_redacted():
    for name in ("WANDB_API_KEY", "HF_TOKEN", "dbPassword", "aws.secret_access_key", "apikey"):
        assert redaction.is_secret(name), name
    for name in ("max_tokens", "monkey", "keyboard", "seed", "monitor.metric"):
        assert not redaction.is_secret(name), name
    assert redaction.redact_overrides(["+db.password=hunter2", "seed=3"]) == [
        "+db.password=<redacted>",
        "seed=3",
    ]
    assert redaction.redact({"api_key": "abc", "lr": 0.1, "nested": {"token": "x"}}) == {
        "api_key": "<redacted>",
        "lr": 0.1,
        "nested": {"token": "<redacted>"},
    }


def test_secret_values_in_text_urls_and_logs_are_redacted():
    for name in ("dbpassword", "client_secret_id", "AWS_SECRET_ACCESS_KEY", "auth_token"):
        assert redaction.is_secret(name), name
    storage = "hparams_search.storage=postgresql://bob:{}@db:5432/optuna"
    assert redaction.redact_overrides([storage.format("pw-123"), "+dbpassword=x"]) == [
        storage.format("<redacted>"),
        "+dbpassword=<redacted>",
    ]
    # Hydra's grid escapes colons; Hydra's override_dirname joins overrides with commas.
    assert (
        redaction.redact_text("x=postgresql\\://bob\\:pw@h/db,+db.password=hunter2,seed=1", [])
        == "x=postgresql\\://bob\\:<redacted>@h/db,+db.password=<redacted>,seed=1"
    )
    assert redaction.redact_text("sqlite:////tmp/optuna.db max_tokens=5", []) == (
        "sqlite:////tmp/optuna.db max_tokens=5"
    )
    record = logging.LogRecord("hydra", logging.INFO, "", 0, "#0 : %s", ("+x.api_key=abc",), None)
    assert redaction.RedactFilter().filter(record)
    assert record.getMessage() == "#0 : +x.api_key=<redacted>"
    assert provenance.command_line(["/venv/bin/litlab-train", "+db.token=abc", "seed=1"]) == [
        "litlab-train", "+db.token=<redacted>", "seed=1",
    ]  # fmt: skip


@pytest.mark.slow
def test_no_command_line_secret_in_any_file_of_a_grid(tmp_path):
    url = f"postgresql://bob:{SECRET[::-1]}@db.example:5432/optuna"
    proc = run_cli(
        "litlab-train", "-m", "experiment=logistic", "trainer=cpu", "logger=wandb",
        "trainer.max_epochs=1", f"+db.password={SECRET}", f"+db.url={url}",
        "model.optimizer.lr=0.05,0.1", *QUIET, cwd=tmp_path, env={"WANDB_MODE": "offline"},
    )  # fmt: skip
    for text in (proc.stdout, proc.stderr):  # Hydra prints each job's overrides
        assert SECRET not in text and SECRET[::-1] not in text
    assert "+db.password=<redacted>" in proc.stdout + proc.stderr
    files = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"multirun.yaml", "overrides.yaml", "hydra.yaml", "run.json"} <= names
    assert any(n.endswith(".wandb") for n in names)
    for path in files:  # .hydra/*, multirun.yaml, run.json, results, wandb's own files
        data = path.read_bytes()
        assert SECRET.encode() not in data and SECRET[::-1].encode() not in data, path
    (job,) = [p.parent for p in files if p.name == "run.json" and p.parent.name == "0"]
    command = json.loads((job / "run.json").read_text())["command"]
    assert "+db.password=<redacted>" in command
    # A grid job records the command that reruns it alone (Hydra escapes its colons).
    assert any(c.startswith("+db.url=") and ":<redacted>@db.example" in c for c in command)


# --- comparing runs -----------------------------------------------------------------------------


def test_compare_reads_many_runs_into_one_table(tmp_path, capsys):
    for seed in (0, 1):
        cfg = compose_config(
            ["experiment=linear", "logger=none", "trainer.max_epochs=1", f"seed={seed}", *QUIET],
            output_dir=tmp_path / "runs" / f"seed{seed}",
        )
        fit_and_test(cfg)
    rows = read_runs([tmp_path / "runs"], config_keys=["model.optimizer.lr"])
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(r["status"] == "finished" and r["model.optimizer.lr"] == 0.3 for r in rows)
    assert rows[0]["test/loss"] != rows[1]["test/loss"]
    header = to_csv(rows).splitlines()[0].split(",")
    assert header[:6] == ["run_dir", "name", "status", "seed", "start_time", "overrides"]
    capsys.readouterr()  # the runs' own output
    compare_main([str(tmp_path / "runs" / "seed1")])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith(str(tmp_path / "runs" / "seed1"))
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            to_frame(rows)
    else:
        frame = to_frame(rows)
        assert list(frame["seed"]) == [0, 1] and "test/loss" in frame.columns
