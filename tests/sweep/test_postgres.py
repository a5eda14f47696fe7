"""Optuna on a real PostgreSQL server (a throwaway cluster on 127.0.0.1): workers started at
once on an empty database, a worker killed mid-trial, the server restarted or gone while workers
run, drivers, and no password anywhere."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from litlab import LitlabError
from litlab.sweep import optuna_search
from litlab.tracking import manifest
from tests.servers import PG_PASSWORD, postgres, wait_for

pytestmark = pytest.mark.slow
ARG_SECRET = "Arg-canary-51d0e2"  # typed on the command line as +db.password
BASE = [
    "experiment=logistic",
    "hparams_search=logistic",
    "trainer=cpu",
    "callbacks.progress_bar.refresh_rate=0",
    f"+db.password={ARG_SECRET}",
]


@pytest.fixture(scope="module")
def pg():
    with postgres() as server:
        yield server


@pytest.fixture
def database(pg):
    return pg.create_database(f"optuna_{uuid.uuid4().hex[:8]}")


def start(cwd: Path, *overrides: str, log: str) -> subprocess.Popen:
    env = {**os.environ, "LITLAB_LOG_DIR": str(cwd / "logs"), "WANDB_MODE": "offline"}
    out = open(cwd / f"{log}.out", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [sys.executable, "-m", "litlab.sweep", *BASE, *overrides],
        cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def study_for(tmp_path: Path, overrides: list[str], monkeypatch) -> optuna.Study:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    plan = optuna_search.plan([*BASE, *overrides])
    return optuna.load_study(study_name=plan.name, storage=plan.storage_url)


def running_trials(find_study, workers: dict[Path, subprocess.Popen]) -> list:
    """The study's running trials whose run dir has started (none before the study exists); a
    worker that exited fails the test, with its output (``workers``: log -> process)."""
    for log, worker in workers.items():
        if worker.poll() is not None:
            raise AssertionError(log.read_text())
    try:
        trials = find_study().get_trials(deepcopy=False)
    except KeyError:  # the study is not created yet
        return []
    return [
        t
        for t in trials
        if t.state.name == "RUNNING"
        and t.user_attrs.get("run_dir")
        and manifest.read(t.user_attrs["run_dir"])
    ]


def assert_no_secret_written(root: Path) -> int:
    """Every file under ``root`` (run dirs, wandb runs, results, worker output) is clean."""
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        data = path.read_bytes()
        for secret in (PG_PASSWORD, ARG_SECRET):
            assert secret.encode() not in data, f"{secret} in {path}"
    return len(files)


LONG_TRIAL = ["trainer.max_epochs=1000", "callbacks.early_stopping.patience=1000"]


def one_trial(name: str, database: str, outage_limit: float) -> list[str]:
    """The overrides of a study of one trial on ``database``, its heartbeat every second."""
    return [
        "logger=csv",
        f"hparams_search.study_name={name}",
        "hparams_search.n_trials=1",
        "hparams_search.heartbeat=1",
        f"hparams_search.outage_limit={outage_limit}",
        f"hparams_search.storage={database}",
    ]


def test_three_workers_started_at_once_share_one_study(tmp_path, database, monkeypatch):
    overrides = [
        "logger=wandb",
        "trainer.max_epochs=1",
        "hparams_search.n_trials=6",
        f"hparams_search.storage={database}",
    ]
    workers = [start(tmp_path, *overrides, log=f"worker{i}") for i in range(3)]
    codes = [w.wait(timeout=600) for w in workers]
    outputs = [(tmp_path / f"worker{i}.out").read_text() for i in range(3)]
    assert codes == [0, 0, 0], "\n".join(outputs)
    for out in outputs:  # every worker joined the study (no schema race) and says where it is
        assert "postgresql://litlab:<redacted>@127.0.0.1" in out.splitlines()[0]

    trials = study_for(tmp_path, overrides, monkeypatch).get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(6))  # n_trials exactly, no gap
    assert {t.state.name for t in trials} == {"COMPLETE"}
    points = {tuple(sorted(t.params.items())) for t in trials}
    assert len(points) == 6  # every worker drew its own points
    assert len({t.user_attrs["pid"] for t in trials}) >= 2
    for t in trials:
        run = manifest.read(t.user_attrs["run_dir"])
        assert run["status"] == "finished"
        assert run["command"][:3] == ["python", "-m", "litlab.sweep"]
        assert "+db.password=<redacted>" in run["command"]
        assert (
            f"hparams_search.storage={database}".replace(PG_PASSWORD, "<redacted>")
            in run["command"]
        )
    assert assert_no_secret_written(tmp_path) > 50


def test_killed_worker_trial_is_failed_rerun_and_its_run_dir_says_so(
    tmp_path, database, monkeypatch
):
    overrides = [
        "logger=csv",
        "trainer.max_epochs=40",
        "hparams_search.n_trials=2",
        "hparams_search.heartbeat=1",
        f"hparams_search.storage={database}",
    ]
    doomed = start(tmp_path, *overrides, log="doomed")
    study = functools.cache(lambda: study_for(tmp_path, overrides, monkeypatch))
    running = {tmp_path / "doomed.out": doomed}
    (victim,) = wait_for(lambda: running_trials(study, running), "its trial", tries=3000)
    survivor = start(tmp_path, *overrides, log="survivor")
    os.killpg(doomed.pid, signal.SIGKILL)  # nothing gets to clean up
    doomed.wait()
    assert survivor.wait(timeout=600) == 0, (tmp_path / "survivor.out").read_text()

    trials = {t.number: t for t in study().get_trials(deepcopy=False)}
    assert trials[victim.number].state.name == "FAIL"
    (rerun,) = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim.number]
    assert rerun.state.name == "COMPLETE" and rerun.params == victim.params
    complete = [t for t in trials.values() if t.state.name == "COMPLETE"]
    assert len(complete) == 2  # n_trials, the rerun in place of the killed one
    run = manifest.read(victim.user_attrs["run_dir"])
    assert run["status"] == "failed" and "no heartbeat" in run["error"]
    assert f"trial {rerun.number}" in run["error"]
    results = (optuna_search.plan([*BASE, *overrides]).dir / "results.csv").read_text()
    (row,) = [r for r in results.splitlines() if r.startswith(f"{victim.number},")]
    assert "no heartbeat" in row
    assert_no_secret_written(tmp_path)


def test_two_workers_ride_out_a_database_restart(tmp_path, pg, database, monkeypatch):
    overrides = [
        "logger=csv",
        "trainer.max_epochs=1",
        "hparams_search.n_trials=6",
        "hparams_search.heartbeat=1",  # every trial's heartbeat is stale by the time it is back
        f"hparams_search.storage={database}",
    ]
    workers = [start(tmp_path, *overrides, log=f"worker{i}") for i in range(2)]
    study = functools.cache(lambda: study_for(tmp_path, overrides, monkeypatch))
    running = {tmp_path / f"worker{i}.out": w for i, w in enumerate(workers)}
    wait_for(lambda: len(running_trials(study, running)) == 2, "a trial each", tries=3000)
    pg.stop()
    time.sleep(3)  # the outage: the workers keep training, their database calls wait
    pg.start()
    codes = [w.wait(timeout=600) for w in workers]
    outputs = [(tmp_path / f"worker{i}.out").read_text() for i in range(2)]
    assert codes == [0, 0], "\n".join(outputs)
    for out in outputs:  # each felt the outage, said so, and went on
        assert "is out of reach" in out and "is back after" in out and "Traceback" not in out

    trials = study_for(tmp_path, overrides, monkeypatch).get_trials(deepcopy=False)
    assert [t.number for t in trials] == list(range(6))  # none lost, none reaped and rerun
    assert {t.state.name for t in trials} == {"COMPLETE"}
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 6
    for t in trials:
        assert manifest.read(t.user_attrs["run_dir"])["status"] == "finished"


def test_an_outage_past_the_limit_ends_the_worker_in_one_line_and_its_trial_is_rerun(
    tmp_path, pg, database, monkeypatch
):
    same_study = one_trial("outage", database, outage_limit=2)
    worker = start(tmp_path, *same_study, *LONG_TRIAL, log="gone")
    study = functools.cache(lambda: study_for(tmp_path, same_study, monkeypatch))
    running = {tmp_path / "gone.out": worker}
    (victim,) = wait_for(lambda: running_trials(study, running), "its trial", tries=3000)
    pg.stop()
    try:
        assert worker.wait(timeout=600) == 1
    finally:
        pg.start()
    out = (tmp_path / "gone.out").read_text()
    line = out.splitlines()[-1]
    assert line.startswith(
        "litlab-sweep: error: hparams_search.storage=postgresql://litlab:<redacted>@127.0.0.1:"
    )
    assert "out of reach for 2 s" in line and "Connection refused" in line, out
    assert "Traceback" not in out
    run = manifest.read(victim.user_attrs["run_dir"])
    assert run["status"] == "failed" and "out of reach" in run["error"]

    # The database is back: the same command reruns the trial the outage stopped.
    again = start(tmp_path, *same_study, "trainer.max_epochs=1", log="again")
    assert again.wait(timeout=600) == 0, (tmp_path / "again.out").read_text()
    trials = {t.number: t for t in study_for(tmp_path, same_study, monkeypatch).get_trials()}
    assert trials[victim.number].state.name == "FAIL"
    (rerun,) = [t for t in trials.values() if t.system_attrs.get("failed_trial") == victim.number]
    assert rerun.state.name == "COMPLETE" and rerun.params == victim.params
    assert_no_secret_written(tmp_path)


def test_ctrl_c_while_the_database_is_away_is_one_line_and_status_130(
    tmp_path, pg, database, monkeypatch
):
    """Ctrl+C ended the wait for the database as an outage past its limit does: status 1."""
    same_study = one_trial("ctrl-c", database, outage_limit=600)
    worker = start(tmp_path, *same_study, *LONG_TRIAL, log="ctrl-c")
    out = tmp_path / "ctrl-c.out"
    study = functools.cache(lambda: study_for(tmp_path, same_study, monkeypatch))
    wait_for(lambda: running_trials(study, {out: worker}), "its trial", tries=3000)
    pg.stop()
    try:
        # The heartbeat thread finds the database gone within a second, and starts waiting.
        wait_for(lambda: "is out of reach" in out.read_text(), "the outage", tries=3000)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=600) == 130, out.read_text()
    finally:
        pg.start()
    text = out.read_text()
    line = text.splitlines()[-1]
    assert line.startswith(
        "litlab-sweep: interrupted; hparams_search.storage=postgresql://litlab:<redacted>@"
    ), text
    assert line.endswith("the trial this stopped is retried, as a killed one is.")
    assert "Traceback" not in text


def test_urls_as_users_write_them_and_one_line_when_they_fail(tmp_path, pg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    database = pg.create_database(f"optuna_{uuid.uuid4().hex[:8]}")
    for url in (database, database.replace("postgresql://", "postgresql+psycopg2://")):
        sweep = optuna_search.plan([*BASE, f"hparams_search.storage={url}"])
        study = optuna_search.open_study(sweep)
        assert study.study_name == sweep.name
    bad = [
        (database.replace(PG_PASSWORD, "wrong-" + PG_PASSWORD), "password authentication failed"),
        (database.replace("postgresql://", "postgresql+pg8000://"), "pip install pg8000"),
        (database.replace("postgresql://", "postgress://"), "no database URL SQLAlchemy knows"),
    ]
    for url, message in bad:
        sweep = optuna_search.plan([*BASE, f"hparams_search.storage={url}"])
        with pytest.raises(LitlabError, match=message) as err:
            optuna_search.open_study(sweep)
        text = str(err.value)
        assert len(text.splitlines()) == 1 and PG_PASSWORD not in text, text
        assert ":<redacted>@127.0.0.1" in text
