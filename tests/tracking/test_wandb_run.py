"""wandb: an offline run by default, resumed with its run, artifacts, mode from the environment."""

import json
import socket

import lightning
import optuna
import pytest

from litlab import LitlabError
from litlab.config import compose_config
from litlab.run import fit_and_test
from litlab.run.evaluation import plan_eval
from litlab.tracking import wandb_run
from tests.conftest import final_metrics, run_cli, run_dirs
from tests.tracking.conftest import assert_picture, manifest
from tests.wandb_offline import read_offline_run

QUIET = ["callbacks.progress_bar.refresh_rate=0"]
SECRET = "s3cr3t-0123456789abcdef0123456789abcdef"


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
    # The installed packages as wandb's requirements.txt (litlab writes it: wandb's own is off).
    requirements = (offline.dir / "files" / "requirements.txt").read_text().splitlines()
    assert f"lightning=={lightning.__version__}" in requirements and len(requirements) > 20
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


def background_logger(tmp_path) -> wandb_run.WandbLogger:
    return wandb_run.WandbLogger(
        save_dir=str(tmp_path), project="t", mode="offline", id="bg123456",
        settings={"silent": True},
    )  # fmt: skip


def test_wandb_starts_in_the_background_and_the_first_use_waits_for_it(tmp_path):
    import threading

    import wandb

    lg = background_logger(tmp_path)
    started = threading.Event()
    seen = []

    def first_records(run):
        started.wait(30)  # the main thread goes on meanwhile
        seen.append((threading.current_thread().name, run.id))
        run.config.update({"first": 1})

    lg.start(first_records)
    assert seen == []  # start returned at once: a start on this thread would not have
    lg.log_metrics({"m": 1.0}, step=0)  # queued while wandb starts
    touched = lg.experiment  # Lightning asks for it before fitting: that must not wait
    assert seen == []
    started.set()
    assert touched.id == "bg123456"  # any use of it waits for the start
    assert seen == [("litlab-wandb-start", "bg123456")]
    assert isinstance(lg.experiment, wandb.sdk.wandb_run.Run)
    assert lg.experiment.config["first"] == 1
    where = wandb_run.finish([lg], {"final": 2.0}, "success")
    offline = read_offline_run(tmp_path)
    assert where["id"] == "bg123456" and offline.summary["final"] == 2.0
    assert [h["m"] for h in offline.history] == [1.0]  # the queued record was sent


def test_a_failed_background_start_raises_where_wandb_is_first_needed(tmp_path, monkeypatch):
    import wandb

    def refused(*args, **kwargs):
        raise wandb.errors.UsageError("cannot start the service")

    monkeypatch.setattr(wandb, "init", refused)
    lg = background_logger(tmp_path)
    lg.start(lambda run: None)
    with pytest.raises(wandb.errors.UsageError, match="cannot start the service"):
        lg.experiment.id  # noqa: B018 - on the main thread, at its first use
    with pytest.raises(wandb.errors.UsageError, match="cannot start the service"):
        lg.log_metrics({"m": 1.0}, step=0)
    lg.finalize("failed")  # the run is closed as it failed: no wandb run to close, no error
    assert wandb_run.finish([lg], {}, "failed") is None


def test_disabled_wandb_runs_without_a_wandb_folder(cfg_for, tmp_path):
    run = fit_and_test(
        cfg_for("experiment=linear", "trainer.max_epochs=1", "logger.wandb.mode=disabled")
    )
    assert run.metrics and manifest(tmp_path / "run")["status"] == "finished"
    assert not (tmp_path / "run" / "wandb").exists()


class Raises(lightning.Callback):
    """Raises ``error`` at the end of the first validation, as Optuna's pruning callback does."""

    def __init__(self, error: Exception):
        self.error = error

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            raise self.error


@pytest.mark.parametrize(
    "error, status, exit_code",
    [
        (optuna.TrialPruned("Trial was pruned at epoch 0."), "pruned", 0),
        (RuntimeError("boom"), "failed", 1),
    ],
    ids=["pruned", "failed"],
)
def test_a_pruned_run_ends_pruned_in_wandb_and_a_failed_one_failed(
    cfg_for, tmp_path, error, status, exit_code
):
    # A sweep's pruner stopping a run is no failure: wandb finishes it (exit code 0, which wandb
    # shows as finished) and its summary says pruned, as run.json does. It used to say failed.
    with pytest.raises(type(error)):
        fit_and_test(cfg_for("experiment=linear", "trainer.max_epochs=3"), [Raises(error)])
    record = manifest(tmp_path / "run")
    offline = read_offline_run(tmp_path / "run")
    assert record["status"] == status and str(error) in record["error"]
    assert offline.exit_code == exit_code
    assert offline.summary.get("status") == ("pruned" if status == "pruned" else None)
    assert offline.history  # the epoch it trained was logged before it stopped


@pytest.mark.parametrize(
    "env, override, named",
    [
        ("ofline", None, "WANDB_MODE='ofline'"),
        ("", None, "WANDB_MODE=''"),  # wandb refuses an empty one too
        ("ofline", "logger.wandb.mode=offline", "WANDB_MODE='ofline'"),  # wandb reads it anyway
        (None, "logger.wandb.mode=Offline", "logger.wandb.mode='Offline'"),
    ],
)
def test_a_bad_wandb_mode_is_refused_before_the_run(
    cfg_for, tmp_path, monkeypatch, env, override, named
):
    # wandb raised it at the run's first use, in a traceback, after the run dir was written.
    if env is not None:
        monkeypatch.setenv("WANDB_MODE", env)
    cfg = cfg_for("experiment=linear", "trainer.max_epochs=1", *([override] if override else []))
    with pytest.raises(LitlabError) as err:
        fit_and_test(cfg)
    message = str(err.value)
    assert message.startswith(f"{named} is not a wandb mode (online, offline, disabled, ")
    assert not (tmp_path / "run").exists()


def test_litlab_eval_refuses_a_bad_wandb_mode(trained, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "ofline")
    cfg = compose_config(
        [f"ckpt_path={trained('linear')}", "logger=wandb"], tmp_path / "eval", config_name="eval"
    )
    with pytest.raises(LitlabError, match=r"^WANDB_MODE='ofline' is not a wandb mode \(online"):
        plan_eval(cfg)


def test_a_bad_wandb_mode_on_the_command_line_is_one_line(tmp_path):
    proc = run_cli(
        "litlab-train", "experiment=linear", cwd=tmp_path, env={"WANDB_MODE": "ofline"}, check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "litlab: error: WANDB_MODE='ofline' is not a wandb mode (online, offline, disabled, "
        "shared, dryrun, run): set one of them, or unset it (litlab then picks online or offline)."
    ]
    assert not list((tmp_path / "logs").rglob("*/runs/*"))  # a refused run leaves no run dir
