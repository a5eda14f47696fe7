"""A resume continues the run it names: that run's config, with this command's overrides on top,
in that run's directory, by one process at a time."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from litlab import LitlabError
from litlab.config import CONFIG_DIR, to_plain
from litlab.models.optim import continue_from_config
from litlab.run.checkpoints import Checkpoint, check_same_task
from litlab.tracking import manifest

LOCK_FILE = ".lock"


class ContinueFromConfig(Callback):
    """On a resume, once Lightning has restored the optimizer and schedule: what the config
    changed since (a longer run, a new learning rate) replaces what was restored
    (``litlab.models.optim.continue_from_config``). Added by ``litlab.run.build.build_all``, as
    a callback rather than a LitTask hook: a task that overrides ``on_train_start`` without
    calling ``super()`` cannot lose it."""

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.ckpt_path:
            continue_from_config(pl_module)


def _is_group(key: str) -> bool:
    return (CONFIG_DIR / key).is_dir()


def resumed_config(cfg: DictConfig, checkpoint: Checkpoint, overrides: list[str]) -> DictConfig:
    """The run's own config (as stored in its checkpoint), with ``overrides`` applied on top.

    ``cfg`` is this command's composed config: overrides take their values from it, so they
    mean exactly what they mean on a fresh run. The stored config is the one before resolving
    where the checkpoint has it, so ``seed=3`` or ``model.optimizer.lr=...`` reach the keys
    that interpolate them. A group override (``trainer=cpu``) replaces that whole node.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = checkpoint.config
    explicit = any(o.split("=", 1)[0].lstrip("+~") == "experiment" for o in overrides)
    if explicit:
        check_same_task(saved, to_plain(cfg), checkpoint.path)
    merged = OmegaConf.create(copy.deepcopy(checkpoint.source or saved))
    for typed in OverridesParser.create().parse_overrides(overrides):
        key = typed.key_or_group
        if key.startswith("hydra.") or key == "experiment":
            continue
        if typed.is_delete():
            _delete(merged, key)
        elif _is_group(key):
            _replace_group(merged, cfg, typed.input_line or key, saved, explicit)
        else:
            OmegaConf.update(merged, key, OmegaConf.select(cfg, key), force_add=True)
    merged.name = saved["name"]
    merged.paths = cfg.paths  # where things are now, not where they were
    check_same_task(saved, to_plain(merged), checkpoint.path)
    check_optimizer_changes(saved, to_plain(merged))
    return merged


def _delete(merged: DictConfig, key: str) -> None:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(merged, parent) if parent else merged
    if isinstance(node, DictConfig) and leaf in node:
        del node[leaf]


def _replace_group(merged: DictConfig, cfg: DictConfig, typed: str, saved: dict, explicit: bool):
    node = typed.split("=", 1)[0].lstrip("+").replace("/", ".")
    if OmegaConf.select(cfg, node) is None and node not in cfg:
        raise LitlabError(
            f"{typed} cannot be added to a resume (it sets keys all over the config): give its "
            "keys one by one instead, e.g. trainer.max_epochs=5."
        )
    if not explicit and cfg.name != saved["name"]:
        raise LitlabError(
            f"{typed} on a resume needs the run's experiment on the command line too: add "
            f"experiment={saved['name']}."
        )
    OmegaConf.update(merged, node, OmegaConf.select(cfg, node), force_add=True, merge=False)


def check_optimizer_changes(saved: dict, merged: dict) -> None:
    """Say in one line which optimizer and schedule settings this resume changes, all of which
    the restored optimizer takes when training starts (``models.optim.continue_from_config``);
    refuse in one line, before the run, any it could not take faithfully."""
    old, new = saved.get("model") or {}, merged.get("model") or {}
    changes = {
        f"model.{part}.{key}": (before.get(key), after.get(key))
        for part in ("optimizer", "scheduler")
        for before, after in [(old.get(part) or {}, new.get(part) or {})]
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }
    if old.get("scheduler_interval") != new.get("scheduler_interval"):
        changes["model.scheduler_interval"] = (
            old.get("scheduler_interval"),
            new.get("scheduler_interval"),
        )
    if not changes:
        return
    schedule = (new.get("scheduler") or {}).get("_target_")
    for key, (before, after) in changes.items():
        why = _not_applicable(key, before, after, schedule)
        if why:
            raise LitlabError(
                f"{key}={after} cannot be applied on a resume ({why}): "
                "leave it out to resume, or start a new run with it."
            )
    said = ", ".join(
        f"{key}={after} (was {'unset' if before is None else before})"
        for key, (before, after) in changes.items()
    )
    _say(f"litlab: this resume applies {said} to the restored optimizer and schedule.")


def _not_applicable(key: str, before, after, schedule: str | None) -> str | None:
    """Why the restored optimizer cannot take ``key``'s new value as it is (None: it can)."""
    from litlab.models.optim import REBUILT

    leaf = key.rpartition(".")[2]
    if key == "model.scheduler_interval" or leaf == "_target_":
        return "the checkpoint holds the state of another optimizer or schedule"
    if key.startswith("model.optimizer.") and not _is_number(after):
        return "only numbers can change in a restored optimizer"
    rebuilt = {f"{c.__module__}.{c.__name__}" for c in REBUILT}
    if (
        (key.startswith("model.scheduler.") or leaf == "lr")
        and schedule
        and schedule not in rebuilt
    ):
        return f"litlab rebuilds only these schedules on a resume: {', '.join(sorted(rebuilt))}"
    return None


def _is_number(value) -> bool:
    if isinstance(value, list | tuple):
        return bool(value) and all(map(_is_number, value))
    return isinstance(value, int | float) and not isinstance(value, bool)


@rank_zero_only
def _say(line: str) -> None:
    print(line, file=sys.stderr)


@contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold ``<run dir>/.lock`` while the run runs; a second run of the same dir is refused.

    An OS file lock (flock): it ends with the process that holds it, however that process ends,
    so a killed run never locks its directory for good.
    """
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        owner = manifest.read(run_dir).get("host", {})
        who = f"process {owner.get('pid')} on {owner.get('hostname')}" if owner else "a process"
        raise LitlabError(
            f"{run_dir} is in use: {who} is running it. Wait for it to end (or stop it) "
            "before resuming it."
        ) from None
    try:
        yield
    finally:
        lock.release()
