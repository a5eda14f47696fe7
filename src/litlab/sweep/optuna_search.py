"""The Optuna study loop: each trial is a normal litlab run in its own dir under the sweep dir.

The study lives in a database (SQLite in the sweep dir unless ``hparams_search.storage`` names
another), so rerunning the same command continues it, and any number of processes or machines
pointing at the same database share the work.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from litlab import LitlabError, first_line
from litlab.config import compose_config
from litlab.sweep import interrupt, results, storage
from litlab.sweep.devices import worker_env
from litlab.sweep.space import Param, apply_overrides, is_space_override, override, parse_space
from litlab.tracking.redaction import redact_text

log = logging.getLogger(__name__)

WORKER_ENV = "LITLAB_SWEEP_WORKER"  # set in the extra processes n_jobs > 1 starts
# Settings that change how a study runs, not what it searches: they leave its name alone.
_RUN_ONLY = (
    "hparams_search.n_trials",
    "hparams_search.n_jobs",
    "hparams_search.storage",
    "hparams_search.outage_limit",
)
INTERRUPTED = "interrupted (Ctrl+C or a signal); queued to run again"


@dataclass
class Sweep:
    """One ``litlab-sweep`` command, planned: its config, search space, study and where it lives."""

    cfg: DictConfig
    base: list[str]  # the user's overrides, minus the sweep's own settings
    space: list[Param]
    name: str
    dir: Path
    storage_url: str
    metric: str
    direction: str  # minimize or maximize

    @property
    def fixed(self) -> list[str]:
        return [override(p.key, p.values[0]) for p in self.space if p.kind == "fixed"]


def _direction(value: str) -> str:
    d = {"min": "minimize", "max": "maximize"}.get(value, value)
    if d not in ("minimize", "maximize"):
        raise LitlabError(f"hparams_search.direction is {value!r}: use min or max.")
    return d


def _study_name(choice: str, base: list[str], hs: DictConfig) -> str:
    """``<space>-<hash>``: the same command finds the same study, a changed one starts afresh."""
    what = {
        "overrides": sorted(o for o in base if not o.lstrip("+~").startswith(_RUN_ONLY)),
        "params": OmegaConf.to_container(hs.params, resolve=True),
        "metric": hs.metric,
        "direction": hs.direction,
    }
    digest = hashlib.sha1(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    return f"{choice}-{digest}"


def _one_line(err: BaseException) -> str:
    """A Hydra error, printed by Hydra over several lines, as one: its first line, its cause's
    (``Key 'optimizr' is not in struct``), the rest (``To append ... use +key=...``), and a list
    of options as a list; not Hydra's config search path."""
    text = str(err).split("Config search path:")[0]
    lines = [(raw[:1].isspace(), raw.strip()) for raw in text.splitlines() if raw.strip()]
    if err.__cause__ is not None:
        lines[1:1] = [(False, line) for line in str(err.__cause__).strip().splitlines()[:1]]
    out, item = lines[0][1], False
    for indented, line in lines[1:]:
        sep = ", " if indented and item else " " if out.endswith(":") else ". "
        out = (out if sep != ". " else out.rstrip(".")) + sep + line
        item = indented
    return out


def plan(overrides: list[str]) -> Sweep:
    """Compose the config a sweep command gives and read its search settings."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException

    space_overrides = [o for o in overrides if is_space_override(o)]  # Hydra cannot reach these
    try:
        cfg = compose_config(
            [o for o in overrides if o not in space_overrides], output_dir=Path.cwd()
        )
    except HydraException as err:  # a misspelt key, say: Hydra's words on one line
        raise LitlabError(_one_line(err)) from err
    hs = cfg.get("hparams_search")
    if not hs:
        raise LitlabError(
            "No search space: add hparams_search=<name> (one of configs/hparams_search/), "
            "e.g. litlab-sweep experiment=linear hparams_search=linear."
        )
    _check_settings(hs)
    with open_dict(cfg):
        hs.params = apply_overrides(hs.get("params"), space_overrides)
    choice = HydraConfig.get().runtime.choices.get("hparams_search") or "sweep"
    base = [o for o in overrides if not o.lstrip("+~").startswith("hparams_search")]
    name = hs.study_name or _study_name(choice, overrides, hs)
    sweep_dir = Path(hs.dir).expanduser().resolve() / name
    if "{" in str(sweep_dir) or "}" in str(sweep_dir):
        # Optuna formats its SQLite URL with str.format, and Hydra reads a trial's run dir back
        # as config, "${" as an interpolation: either would end in a traceback midway.
        raise LitlabError(
            f"cannot make a sweep in {sweep_dir}: point LITLAB_LOG_DIR (or hparams_search.dir"
            "=...) at a folder whose path has no '{' or '}'"
        )
    return Sweep(
        cfg=cfg,
        base=base,
        space=parse_space(hs.params),
        name=name,
        dir=sweep_dir,
        storage_url=hs.storage or f"sqlite:///{sweep_dir / 'optuna.db'}",
        metric=hs.metric,
        direction=_direction(hs.direction),
    )


def _check_settings(hs: DictConfig) -> None:
    """The search's own numbers, refused in one line as a run's are (``config.signatures``)."""
    from litlab.config.signatures import describe, fits
    from litlab.config.values import Count, Positive

    for key, hint in {
        "n_trials": Count,
        "n_jobs": Count,
        "heartbeat": Count,
        "outage_limit": Positive,
    }.items():
        value = hs.get(key)
        if fits(value, hint) is False:
            raise LitlabError(f"hparams_search.{key}={value!r} is not allowed: {describe(hint)}.")


def _storage(sweep: Sweep, heartbeat: int):
    import optuna

    # Heartbeats are marked experimental in Optuna, and are what makes a killed trial recoverable.
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    # A trial whose process died (killed, node lost) is failed and its point retried once.
    retry, argument = _retry_callback()
    kwargs = {argument: _ReapDeadTrial(retry(max_retry=1), heartbeat)}
    if sweep.storage_url.startswith("sqlite"):
        sweep.dir.mkdir(parents=True, exist_ok=True)
        # Several local processes write to one file: wait for the lock instead of failing.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    return storage.retry_races(
        lambda: storage.PatientStorage(
            sweep.storage_url,
            outage_limit=float(sweep.cfg.hparams_search.outage_limit),
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            **kwargs,
        )
    )


def _retry_callback():
    """Optuna's callback that retries a dead trial's point, and RDBStorage's argument for it:
    renamed in Optuna 4.9."""
    try:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        return RetryHeartbeatStaleTrialCallback, "heartbeat_stale_trial_callback"
    except ImportError:
        from optuna.storages import RetryFailedTrialCallback

        return RetryFailedTrialCallback, "failed_trial_callback"


def _retry_history(trial) -> list[int]:
    """The numbers of the trials that ``trial`` retries (the first one first); empty for a trial
    that is no retry of a dead one."""
    return _retry_callback()[0].retry_history(trial)


class _ReapDeadTrial:
    """Optuna fails a trial whose process stopped sending heartbeats (killed, node lost) and
    retries its point; its run dir, which the dead process never closed, is marked failed too."""

    def __init__(self, retry, heartbeat: int):
        self.retry = retry
        self.heartbeat = heartbeat  # seconds; a trial silent for twice this is dead

    def __call__(self, study, trial) -> None:
        self.retry(study, trial)
        from litlab.tracking import manifest

        run_dir = trial.user_attrs.get("run_dir")
        if not run_dir or manifest.read(run_dir).get("status") != "running":
            return
        again = [
            t.number for t in study.get_trials(deepcopy=False) if trial.number in _retry_history(t)
        ]
        rerun = f"; its point is queued again as trial {again[0]}" if again else ""
        manifest.mark(
            run_dir,
            "failed",
            f"the trial's process stopped (killed, or its machine lost): no heartbeat for "
            f"{self.heartbeat * 2} s{rerun}",
        )


def check_trial_devices(cfg: DictConfig) -> None:
    """Refuse DDP trials before any study exists: trials run inside this process."""
    strategy = str(cfg.trainer.get("strategy", ""))
    if strategy.startswith("ddp") and cfg.trainer.get("devices") not in (1, "1"):
        raise LitlabError(
            "litlab-sweep runs trials inside its own process, so a trial cannot start DDP ranks. "
            "Use one device per trial (n_jobs for parallel trials), or a grid with "
            "litlab-train -m for DDP trials."
        )


def open_study(sweep: Sweep):
    """The study, created by whichever worker comes first; any number may call this at once."""
    import optuna
    import sqlalchemy.exc

    from litlab.run.build import build  # the sampler's and pruner's targets, trusted

    hs = sweep.cfg.hparams_search
    url = sweep.storage_url
    storage.check_driver(url)
    try:
        with storage.lock(url, "schema", sweep.dir):
            study = storage.retry_races(
                lambda: optuna.create_study(
                    study_name=sweep.name,
                    storage=_storage(sweep, int(hs.heartbeat)),
                    direction=sweep.direction,
                    load_if_exists=True,
                )
            )
            check_same_search(sweep, study)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
        raise LitlabError(
            f"hparams_search.storage={redact_text(url)}: {storage.describe(err, url)}"
        ) from err
    sampler_cfg = hs.get("sampler")
    if sampler_cfg:
        study.sampler = build(sampler_cfg, "hparams_search.sampler")
        if sampler_cfg.get("seed") is not None:
            seed_per_trial(study.sampler, int(sampler_cfg.seed))
    pruner = build(hs.get("pruner"), "hparams_search.pruner")  # None: no pruner in the config
    study.pruner = pruner or optuna.pruners.NopPruner()
    return study


SEARCH_ATTR = "litlab_search"  # the study's user attribute: what it was created to search


def check_same_search(sweep: Sweep, study) -> None:
    """Refuse a sweep that names a study created for another search (``study_name``): Optuna
    would mix their trials, count them together and rank them in the study's direction.

    The space, direction and metric are recorded when the study is created; a study created
    before litlab recorded them is compared on its direction (Optuna's own) and adopted.
    """
    ours = {
        "metric": sweep.metric,
        "direction": sweep.direction,
        "space": {p.key: p.describe() for p in sweep.space if p.kind != "fixed"},
    }
    recorded = SEARCH_ATTR in study.user_attrs
    theirs = {**study.user_attrs.get(SEARCH_ATTR, ours), "direction": study.direction.name.lower()}
    differ = [
        f"{k} {theirs[k]} there, {ours[k]} here"
        for k in ("metric", "direction")
        if theirs[k] != ours[k]
    ]
    for key in sorted(theirs["space"].keys() | ours["space"].keys()):
        there, here = (s.get(key, "not searched") for s in (theirs["space"], ours["space"]))
        if there != here:
            differ.append(f"{key} {there} there, {here} here")
    if differ:
        raise LitlabError(
            f"study {sweep.name} ({redact_text(sweep.storage_url)}) was created for another "
            f"search: {'; '.join(differ)}. Give this sweep its own hparams_search.study_name "
            "(or null: a name from its space and overrides)."
        )
    if not recorded:  # a new study, or an old one adopted
        study.set_user_attr(SEARCH_ATTR, ours)


def seed_per_trial(sampler, seed: int) -> None:
    """Reseed ``sampler`` before each trial from the study's seed and the trial's number.

    Workers that seed alike draw alike: three workers started together would try the same
    points. Trial numbers are unique across workers, so the same sweep draws the same points
    for the same trial numbers however many workers share it, and no two trials draw alike.
    """
    import numpy as np

    original = sampler.before_trial

    def before_trial(study, trial) -> None:
        state = np.random.SeedSequence([seed, trial.number]).generate_state(1)[0]
        _reseed(sampler, int(state))
        original(study, trial)

    sampler.before_trial = before_trial


def _reseed(sampler, seed: int, seen: set[int] | None = None) -> None:
    """Every random state of a sampler and of the samplers inside it (TPE's random one).

    Optuna has no public way to seed a sampler after it is made (``reseed_rng`` draws a random
    seed): this reaches into its attributes, and test_sweep.py's
    test_workers_seeded_alike_draw_different_points_reproducibly fails if that stops working.
    """
    import numpy as np
    from optuna.samplers import BaseSampler

    seen = set() if seen is None else seen
    if id(sampler) in seen:
        return
    seen.add(id(sampler))
    for i, value in enumerate(vars(sampler).values()):
        own = (seed + i) % 2**32  # what RandomState.seed accepts
        if isinstance(value, np.random.RandomState):
            value.seed(own)
        elif hasattr(value, "rng") and isinstance(value.rng, np.random.RandomState):
            value.rng.seed(own)  # optuna's LazyRandomState
        elif isinstance(value, BaseSampler):
            _reseed(value, (seed + 1000 + i) % 2**32, seen)


def _group(cfg: DictConfig, name: str) -> list[str]:
    """Trials of one study share a W&B group, when a wandb logger is configured."""
    logger = cfg.get("logger") or {}
    return [f"logger.wandb.group={name}"] if "wandb" in logger and logger.wandb else []


def objective(sweep: Sweep):
    """Optuna's objective: one litlab run per trial, its metric the trial's value."""
    import optuna

    from litlab.tracking.redaction import redact_overrides

    def run_trial(trial: optuna.Trial) -> float:
        if interrupt.requested():
            raise KeyboardInterrupt
        run_dir = sweep.dir / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("pid", os.getpid())
        try:
            params = [override(p.key, p.suggest(trial)) for p in sweep.space if p.kind != "fixed"]
            overrides = [*sweep.base, *sweep.fixed, *params]
            # The study's database keeps what reruns the trial, never a secret typed for it.
            trial.set_user_attr("overrides", redact_overrides(overrides))
            cfg = compose_config([*overrides, *_group(sweep.cfg, sweep.name)], output_dir=run_dir)
            check_trial_devices(cfg)
            metrics = _trial_metrics(sweep, trial, cfg, overrides)
        except optuna.TrialPruned:  # no error: the run recorded itself pruned (fit_and_test)
            raise
        except (KeyboardInterrupt, SystemExit) as err:
            if not interrupt.requested() and not isinstance(err, KeyboardInterrupt):
                raise
            # Optuna marks the trial FAIL on KeyboardInterrupt (not on Lightning's SystemExit),
            # and the next run of the command tries the same point again.
            trial.set_user_attr("error", INTERRUPTED)
            trial.study.enqueue_trial(
                trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False
            )
            raise KeyboardInterrupt from None
        except Exception as err:  # recorded on the trial; study.optimize(catch=...) goes on
            trial.set_user_attr("error", first_line(err))
            raise
        trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if math.isfinite(v)})
        value = metrics.get(sweep.metric)
        if value is None:
            raise LitlabError(
                f"hparams_search.metric {sweep.metric!r} was not logged; the run logged: "
                f"{', '.join(sorted(metrics))}."
            )
        if not math.isfinite(value):
            trial.set_user_attr("error", f"{sweep.metric} was {value}")
        return value  # Optuna records NaN as a failed trial

    return run_trial


def _trial_metrics(sweep: Sweep, trial, cfg: DictConfig, overrides: list[str]) -> dict:
    """The final metrics of one trial: of its run, pruned epoch by epoch; or, cross-validated
    (``data.num_folds`` set, ``data.fold`` not), the mean over its folds."""
    from optuna_integration import PyTorchLightningPruningCallback

    from litlab.run import fit_and_test
    from litlab.tracking.report import final_metrics

    run_dir = Path(cfg.paths.output_dir)
    if cfg.data.get("num_folds") and cfg.data.get("fold") is None:
        return _cross_validate(sweep, trial, overrides, cfg.data.num_folds, run_dir)
    pruning = PyTorchLightningPruningCallback(trial, monitor=sweep.metric)
    run = fit_and_test(cfg, callbacks=[pruning, interrupt.lightning_callback()])
    return final_metrics(run.metrics)


def _cross_validate(sweep: Sweep, trial, overrides: list[str], k: int, run_dir: Path) -> dict:
    """Each fold of a cross-validated trial (``data.num_folds`` set, ``data.fold`` not) as a run
    of its own, ``<trial dir>/fold<i>``; the mean of their final metrics. After each fold the
    mean so far goes to the pruner (step = fold), so a poor point stops before all its folds."""
    import statistics

    import optuna

    from litlab.run import fit_and_test
    from litlab.tracking.report import final_metrics

    folds: list[dict[str, float]] = []
    for i in range(k):
        group = _group(sweep.cfg, sweep.name)
        cfg = compose_config(
            [*overrides, f"data.fold={i}", *group], output_dir=run_dir / f"fold{i}"
        )
        folds.append(final_metrics(fit_and_test(cfg, [interrupt.lightning_callback()]).metrics))
        mean = {
            m: statistics.fmean(f[m] for f in folds) for m in set.intersection(*map(set, folds))
        }
        if sweep.metric in mean:
            trial.report(mean[sweep.metric], i)
            if trial.should_prune():
                raise optuna.TrialPruned(f"Trial was pruned after fold {i} of {k}.")
    return mean


class _Enough(Exception):
    """The study holds n_trials trials (finished or running): this worker is done."""


def live_trials(study) -> list:
    """The trials that count towards n_trials: all but those failed and queued to run again."""
    trials = study.get_trials(deepcopy=False)
    superseded = {n for t in trials for n in _retry_history(t)}
    superseded |= {t.user_attrs["retry_of"] for t in trials if "retry_of" in t.user_attrs}
    return [t for t in trials if t.number not in superseded]


def _count_then_ask(sweep: Sweep, study):
    """``study.ask`` that adds a trial only while the study holds fewer than n_trials, under a
    lock, so that workers started together run exactly n_trials (retries of killed trials aside).

    With n_trials reached but trials of other workers still running, a worker waits: one of
    those may die, and its point is then queued again for whoever is still there.
    """
    import optuna
    from optuna.trial import TrialState

    ask = study.ask
    hs = sweep.cfg.hparams_search
    n_trials, poll = int(hs.n_trials), min(int(hs.heartbeat), 5)

    def ask_if_needed(*args, **kwargs):
        while not interrupt.requested():
            with storage.lock(
                sweep.storage_url, f"trials:{sweep.name}", sweep.dir, float(hs.outage_limit)
            ):
                optuna.storages.fail_stale_trials(study)
                live = live_trials(study)
                if len(live) < n_trials or any(t.state == TrialState.WAITING for t in live):
                    return ask(*args, **kwargs)  # a waiting trial (a retry) first, else a new one
                if not any(t.state == TrialState.RUNNING for t in live):
                    break
            interrupt.sleep(poll)
        raise _Enough

    return ask_if_needed


class _QuietTrialErrors(logging.Filter):
    """Optuna logs a failed trial with the whole traceback. For Ctrl+C and a mistake litlab
    explains (``LitlabError``), its one line says enough; any other error keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt | LitlabError):
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("optuna.study._optimize").addFilter(_QuietTrialErrors())


def _collect_garbage(study, trial) -> None:
    """After each trial, what it left in reference cycles (its model, trainer, data) is freed;
    what survives is frozen (``gc.freeze``), so the next trial's collection walks only what that
    trial created. Optuna's ``gc_after_trial`` walks every object of torch, Lightning and wandb
    each time: about half a second per trial on a 2-core machine."""
    gc.collect()
    gc.freeze()


def optimize(sweep: Sweep, study) -> None:
    """Run trials until the study holds n_trials of them (this process's share)."""
    study.ask = _count_then_ask(sweep, study)
    try:
        study.optimize(
            objective(sweep),
            catch=(Exception,),  # a crashed trial is marked FAIL; the next one starts
            callbacks=[_collect_garbage],
        )
    except _Enough:
        log.info("study %s holds its %s trials", sweep.name, sweep.cfg.hparams_search.n_trials)
    except Exception as err:  # the database stayed away: say so, not what Optuna made of it
        gone = storage.gone_behind(err)
        if gone:
            raise gone from None
        raise
    finally:
        del study.ask


def start_workers(argv: list[str], n: int, gpus: list[str]) -> list[subprocess.Popen]:
    """``n`` more processes running this same sweep command against the same storage, each on
    a GPU of its own where there are several (``devices.worker_env``)."""
    cmd = [sys.executable, "-m", "litlab.sweep", *argv]
    return [
        subprocess.Popen(cmd, env={**os.environ, WORKER_ENV: str(i), **worker_env(i, gpus)})
        for i in range(1, n + 1)
    ]


def trial_rows(study) -> list[results.TrialRow]:
    """The study's trials as rows of the results table, in trial order."""
    from litlab.tracking import manifest

    out = []
    for t in study.get_trials(deepcopy=False):
        status = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
            t.state.name, t.state.name.lower()
        )
        value = t.value if t.state.name == "COMPLETE" else None
        run_dir = t.user_attrs.get("run_dir", "")
        error = ""
        if status == "failed":
            # A trial whose process died never wrote its error: the reaper wrote it in run.json.
            error = t.user_attrs.get("error") or (run_dir and manifest.read(run_dir).get("error"))
            error = error or "failed without an error message (its process was killed?)"
        out.append(
            results.TrialRow(
                name=str(t.number),
                overrides=list(t.user_attrs.get("overrides", [])),
                status=status,
                objective=value,
                metrics=dict(t.user_attrs.get("metrics", {})),
                run_dir=run_dir,
                error=error,
            )
        )
    return out


def write_study_results(sweep: Sweep, study) -> Path:
    """The study's results table in the sweep dir (``results.write_results``) and its pictures
    (``pictures.draw``); results.md's path."""
    from litlab.config import to_plain
    from litlab.sweep import pictures

    mode = "max" if sweep.direction == "maximize" else "min"
    path = results.write_results(trial_rows(study), sweep.dir, sweep.metric, mode)
    drawn = pictures.draw(study, sweep.dir, sweep.metric)
    pictures.log_to_wandb(drawn, to_plain(sweep.cfg).get("logger"), sweep.name, sweep.dir)
    return path
