"""Weights & Biases without surprises: offline on its own, resumable, no secret recorded."""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override

from litlab import LitlabError

# The modes wandb takes: its Settings' ``mode`` field (pinned by tests/test_library_contracts.py).
MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")
_OFFLINE = ("offline", "dryrun")
# How often wandb's service writes what a run logged to its .wandb file. wandb's default, 15 s,
# loses it all when the run's process is killed right after training: the service quits a few
# seconds later without writing the rest. Every 0.1 s (a small write), what a run logs is on disk
# a tenth of a second later (tests/tracking/test_wandb_killed.py; a private setting).
FLUSH_S = 0.1


def _base_url() -> str:
    if os.environ.get("WANDB_BASE_URL"):
        return os.environ["WANDB_BASE_URL"]
    import wandb  # only reached with a key or a netrc file: the run imports wandb anyway

    return str(wandb.Settings().base_url)


def has_api_key() -> bool:
    """A key in ``WANDB_API_KEY``, or the netrc entry ``wandb login`` writes."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc")).expanduser()
    if not path.is_file():
        return False
    import netrc

    try:
        return netrc.netrc(path).authenticators(urlparse(_base_url()).hostname or "") is not None
    except (netrc.NetrcParseError, OSError):
        return False


@functools.lru_cache(maxsize=4)
def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` s (DNS included)."""
    parsed = urlparse(url)
    address = (parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443))
    ok: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection(address, timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    # A thread, because a DNS lookup ignores socket timeouts and can hang for a long time.
    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(ok)


def wandb_mode() -> str:
    """``logger.wandb.mode`` when left to litlab: ``WANDB_MODE`` if set, else online only with a
    key and a server that answers, else offline. Offline never prompts and never waits."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if has_api_key() and reachable(_base_url()):
        return "online"
    return "offline"


def check_modes(logger_cfg) -> None:
    """Refuse before the run starts, in one line, a mode that wandb would refuse with a
    traceback at the run's first use: ``WANDB_MODE`` (wandb reads it even where the config sets
    the mode), then each wandb logger's ``mode``."""
    keys = [key for key, node in (logger_cfg or {}).items() if node and is_wandb(node)]
    if not keys:
        return
    not_a_mode = f"is not a wandb mode ({', '.join(MODES)})"
    env = os.environ.get("WANDB_MODE")
    if env is not None and env not in MODES:  # "" too: wandb refuses an empty one
        raise LitlabError(
            f"WANDB_MODE={env!r} {not_a_mode}: set one of them, or unset it (litlab then "
            "picks online or offline)."
        )
    for key in keys:
        mode = logger_cfg[key].get("mode")
        if mode is not None and mode not in MODES:
            raise LitlabError(f"logger.{key}.mode={mode!r} {not_a_mode}: use one of them.")


def is_offline(mode: str | None) -> bool:
    """Whether a wandb mode writes locally only (``offline``, ``dryrun``)."""
    return mode in _OFFLINE


def _new_run_id() -> str:
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits  # wandb's own id alphabet
    return "".join(secrets.choice(alphabet) for _ in range(8))


def init_kwargs(node: dict, previous: dict | None, packages_listed: bool = False) -> dict:
    """What ``WandbLogger`` gets on top of its config: the run id (the previous one when this run
    resumes another), and wandb's own console chatter off when offline (litlab prints one line).
    ``packages_listed``: ``start`` will write the run's requirements.txt."""
    kwargs: dict[str, Any] = {}
    if not (node.get("id") or node.get("version")):
        kwargs["id"] = (previous or {}).get("id") or _new_run_id()
    # wandb's own metadata holds sys.argv, secrets typed on the command line included (and the
    # git remote, which may carry a token); litlab records the redacted overrides instead.
    settings: dict[str, Any] = {"x_disable_meta": True, "x_transaction_log_flush_interval": FLUSH_S}
    if packages_listed:
        # wandb would list the installed packages itself, reading every one's metadata at each
        # wandb.init: 0.1-0.25 s of every sweep trial. litlab reads them once per process.
        settings["x_save_requirements"] = False
    if is_offline(node.get("mode")):
        settings["silent"] = True
    kwargs["settings"] = {**settings, **(node.get("settings") or {})}
    return kwargs


def is_wandb(node) -> bool:
    """Whether a ``logger.<key>`` config node is a ``WandbLogger``: litlab's (below) or
    Lightning's, which works as before, started when first used."""
    return node.get("_target_") in (
        "litlab.tracking.wandb_run.WandbLogger",
        "lightning.pytorch.loggers.WandbLogger",
    )


class WandbLogger(LightningWandbLogger):
    """Lightning's ``WandbLogger`` (every argument the same) that ``start`` starts in the
    background: importing wandb, starting its service and ``wandb.init`` take over a second,
    which a run spends training instead (docs/benchmarks.md).

    While it starts, metrics and hyperparameters wait in a queue, in order. Whatever needs the
    run itself (a picture, the end of the run, your own ``logger.experiment.<anything>``) waits
    for the start, then the queue is sent. All of that happens on the main thread, so records
    keep their order (``wandb.log`` is not thread-safe, wandb/wandb#1824), and a start that
    failed raises its error there. Before ``start``, on ranks other than 0, and with
    ``sync_tensorboard`` (wandb must start before TensorBoard's writers), it is Lightning's
    logger unchanged."""

    _starting: threading.Thread | None = None
    _start_error: BaseException | None = None
    _queued: tuple[tuple[Callable, tuple], ...] = ()  # (Lightning's method, its arguments)

    def start(self, first_records: Callable[[Any], None]) -> None:
        """``wandb.init``, then ``first_records(run)`` (its config, litlab's story), in a thread."""

        def start() -> None:
            try:
                first_records(LightningWandbLogger.experiment.fget(self))
            except BaseException as err:  # noqa: BLE001 - raised again on the main thread
                self._start_error = err

        if rank_zero_only.rank != 0:
            return
        if self._wandb_init.get("sync_tensorboard"):
            first_records(self.experiment)
            return
        self._starting = threading.Thread(target=start, name="litlab-wandb-start", daemon=True)
        self._starting.start()

    def _still_starting(self) -> bool:
        thread = self._starting
        return thread is not None and thread.is_alive() and thread is not threading.current_thread()

    def wait(self) -> BaseException | None:
        """Until ``start`` is done, then the queued metrics sent; its error, if it failed (None:
        the run is there, or was never started in the background)."""
        thread = self._starting
        if thread is None or thread is threading.current_thread():
            return self._start_error
        thread.join()
        self._starting, queued, self._queued = None, self._queued, ()
        if self._start_error is None:
            for send, args in queued:
                send(*args)
        return self._start_error

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._still_starting():
            return _Starting(self)  # Lightning asks for it before fitting just to create it
        if self.wait() is not None:
            raise self._start_error
        return super().experiment

    @override
    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        self._send(super().log_hyperparams, dict(params) if isinstance(params, Mapping) else params)

    @override
    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._send(super().log_metrics, dict(metrics), step)

    def _send(self, send: Callable, *args) -> None:
        if self._still_starting():
            self._queued += ((send, args),)
        else:
            self.wait()
            send(*args)

    @override
    def finalize(self, status: str) -> None:
        if self.wait() is None:  # no run to finalize otherwise: finish says why
            super().finalize(status)

    def __getstate__(self) -> dict[str, Any]:
        self.wait()  # a thread is not picklable (DDP spawn pickles loggers)
        return super().__getstate__()


class SentByEpochEnd(Callback):
    """With litlab's ``WandbLogger``, what a training or test epoch logged is sent by its end:
    there it waits for wandb's start if that is still going (a run shorter than the start), so
    a run killed right after training keeps every record (tests/tracking/test_wandb_killed.py).
    ``build_all`` adds it in code next to such a logger."""

    @override
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _wait_for_wandb(trainer.loggers)

    @override
    def on_test_epoch_end(self, trainer, pl_module) -> None:
        _wait_for_wandb(trainer.loggers)


def _wait_for_wandb(loggers) -> None:
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.wait()  # a failed start raises at the epoch's own metrics, which Lightning logs next


class _Starting:
    """``WandbLogger.experiment`` while wandb starts: any use of it waits for the run."""

    def __init__(self, logger: WandbLogger):
        self._logger = logger

    def __getattr__(self, name: str):
        self._logger.wait()
        return getattr(self._logger.experiment, name)


def quiet(logger):
    """Lightning always passes ``anonymous=None`` to ``wandb.init``, which makes wandb print a
    deprecation warning on every run; the argument is dropped (pinned by
    tests/test_library_contracts.py: there is no public way)."""
    logger._wandb_init.pop("anonymous", None)
    return logger


def planned_run(loggers, logger_cfg: dict | None) -> dict | None:
    """The wandb run a run will write to, known before wandb starts: its id and mode. run.json
    records it first thing, so even a run killed before its first log resumes into it."""
    modes = [n.get("mode") for n in (logger_cfg or {}).values() if n and is_wandb(n)]
    for lg in wandb_loggers(loggers):
        if lg.version:  # the id litlab chose (init_kwargs), or the one the config sets
            return {"id": lg.version, "mode": modes[0] if modes else None}
    return None


def wandb_loggers(loggers) -> list:
    """The ``WandbLogger``s among ``loggers``."""
    from lightning.pytorch.loggers import WandbLogger

    return [lg for lg in loggers if isinstance(lg, WandbLogger)]


def start(loggers, config: dict, info: dict, packages: dict[str, str]) -> None:
    """Each wandb logger's run started with its first records: the run's ``config``, litlab's
    story of it (``info``: git, versions, hardware, overrides) beside it, and the installed
    ``packages`` as its requirements.txt, where wandb keeps its own list (loggers built with
    ``init_kwargs(..., packages_listed=True)``). litlab's ``WandbLogger`` does all this in the
    background; Lightning's, here and now."""
    if rank_zero_only.rank != 0:
        return
    for lg in wandb_loggers(loggers):
        records = functools.partial(_first_records, lg, config, info, packages)
        if isinstance(lg, WandbLogger):
            lg.start(records)
        else:
            records(lg.experiment)


def _first_records(lg, config: dict, info: dict, packages: dict[str, str], run) -> None:
    lg.log_hyperparams(config)
    run.config.update({"litlab": info}, allow_val_change=True)
    if run.disabled:  # mode=disabled: a stand-in run, with no folder
        return
    path = Path(run.dir) / "requirements.txt"
    path.write_text("".join(f"{name}=={version}\n" for name, version in packages.items()))
    run.save(str(path), base_path=run.dir, policy="now")


def finish(loggers, metrics: dict[str, float], status: str) -> dict | None:
    """Final metrics into the run summary, then close the run (Lightning leaves it open, and the
    next run in this process would join it) as its ``status`` says: ``success``, ``failed`` or
    ``pruned``. Returns where the run is, and prints it once."""
    where = None
    if rank_zero_only.rank != 0:
        return None
    for lg in wandb_loggers(loggers):
        if isinstance(lg, WandbLogger) and lg.wait() is not None:
            continue  # it never started: its error ended the run where wandb was first needed
        # None: wandb was never started (the run failed first). Private, and pinned by
        # tests/test_library_contracts.py: `lg.experiment` would start a run just to end it.
        run = lg._experiment
        if run is None:
            continue
        if metrics:
            run.summary.update(metrics)
        offline = is_offline(run.settings.mode)
        where = {"id": run.id, "project": run.project, "mode": run.settings.mode}
        run_dir = str(Path(run.dir).parent)  # <run dir>/wandb/offline-run-<time>-<id>
        where["dir" if offline else "url"] = run_dir if offline else run.url
        if status == "pruned":  # wandb's own states are finished and failed: pruned is neither
            run.summary["status"] = "pruned"  # as in run.json
        run.finish(exit_code=1 if status == "failed" else 0)
        if offline:
            print(f"wandb: offline run in {run_dir}; upload it with: wandb sync {run_dir}")
        elif run.url:
            print(f"wandb: {run.url}")
    return where
