"""What the console scripts share: --help, and how a mistake, a refused run and a Ctrl+C end."""

from __future__ import annotations

import logging
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from litlab import Interrupted, LitlabError, __version__
from litlab.config import CONFIG_DIR, version_base
from litlab.config.resolvers import LATEST


def hydra_main(config_name: str) -> Callable:
    """``@hydra.main`` for a litlab command. The config it composes comes from the user's own
    files and command line, so it is trusted like their code: on Hydra 1.4, which asks which
    targets a config may call, any target, as on Hydra 1.3. A config read back from a
    checkpoint is not: ``litlab.run.build.saved_config`` checks it."""
    import hydra.utils

    quiet_lightning()

    every = getattr(hydra.utils, "UNSAFE_DISABLE_EXECUTION_CHECKS", None)  # None: Hydra 1.3
    trust = {"execution_whitelist": every} if every is not None else {}
    return hydra.main(str(CONFIG_DIR), config_name, **version_base(), **trust)


def quiet_lightning() -> None:
    """Hide two of Lightning's messages that are not about a litlab run, from the terminal and
    train.log: its "`srun` is available but not used" hint (litlab-sweep starts Slurm jobs
    itself) and its "Tip: ... install litlogger/litmodels" adverts. Every other one passes."""
    warnings.filterwarnings("ignore", message="The `srun` command is available on your system")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not record.getMessage().startswith("💡 Tip:")
    )


@contextmanager
def interrupted_exit(continue_command: Callable[[str], str]) -> Iterator[None]:
    """Ctrl+C ends the process with one line (what to run to continue) and status 130."""
    try:
        yield
    except Interrupted as err:
        print(
            f"litlab: interrupted; {err.run_dir} is recorded as such. Continue it with: "
            f"{continue_command(err.run_dir)}",
            file=sys.stderr,
        )
        sys.exit(130)
    except KeyboardInterrupt:
        print("litlab: interrupted.", file=sys.stderr)
        sys.exit(130)


def discard_refused_run(cfg: DictConfig, own_dir: bool = False) -> None:
    """A new run refused before it started leaves no directory behind.

    Hydra creates the run dir (with ``.hydra/`` and the job's log) before litlab sees the
    config; when litlab then refuses it, nothing in there is a record of a run. The directory
    of a resumed run is never touched (``own_dir``: the command always gets a new one, as
    ``litlab-eval`` does).
    """
    from hydra.core.hydra_config import HydraConfig

    from litlab.tracking import manifest  # not at the top: --help must not import torch

    ckpt_path = OmegaConf.select(cfg, "ckpt_path", throw_on_missing=False)
    # ckpt_path=latest is still "latest" only when no run was found: its dir is a new one.
    resumes = ckpt_path and ckpt_path != LATEST and not own_dir
    if resumes or not HydraConfig.initialized():
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    hydra_files = {".hydra", f"{HydraConfig.get().job.name}.log", manifest.FILENAME}
    if not run_dir.is_dir() or (run_dir / manifest.FILENAME).exists():
        return
    if {p.name for p in run_dir.iterdir()} <= hydra_files:
        shutil.rmtree(run_dir, ignore_errors=True)


def check_resume_keys(args: list[str]) -> None:
    """Before Hydra: a resume typed without ``experiment=`` gets the default experiment's config
    composed, and a key only the run's experiment has fails there (Hydra suggests ``+key``,
    which then fails on the default's data module). Say the fix in one line: add the run's
    ``experiment=``. Any other mistake is left to Hydra and litlab's own checks."""
    resume = [a for a in args if a.startswith("ckpt_path=")]
    named = {a.split("=", 1)[0].lstrip("+~") for a in args}
    if not resume or "experiment" in named or {"-m", "--multirun"} & set(args):
        return
    import re

    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    # ``+key`` too: a key the default experiment lacks is what this looks for.
    overrides = [a[1:] if a.startswith("+") and not a.startswith("++") else a for a in args]
    try:
        with initialize_config_dir(str(CONFIG_DIR), **version_base()):
            compose("train", overrides=overrides)
        return
    except ConfigCompositionException as err:
        missing = re.match(r"Could not override '([^']+)'", str(err))
    except Exception:  # noqa: BLE001 - Hydra reports these itself, as it always does
        return
    if missing:
        typed_plus = f"+{missing.group(1)}=" in " ".join(args)
        _say_the_runs_experiment(missing.group(1), resume[-1].split("=", 1)[1], typed_plus)


def _say_the_runs_experiment(key: str, ckpt_path: str, typed_plus: bool) -> None:
    """Refuse with "add experiment=<the run's>" when the run's own config has ``key``."""
    from litlab.run.checkpoints import open_checkpoint  # torch: only on this failing path

    try:
        saved = OmegaConf.create(open_checkpoint(ckpt_path.strip("'\""), prefer="last").config)
    except LitlabError:
        return  # an unreadable run: Hydra's message, then litlab's, say what is wrong
    if OmegaConf.select(saved, key, default=KeyError) is not KeyError:
        name = saved.get("name")
        raise LitlabError(
            f"{key} is a key of this run's experiment, {name}, not of the default one that a "
            f"resume without experiment= starts from: add experiment={name}"
            + (f" and drop the + before {key}." if typed_plus else ".")
        )


def help_asked(usage: str) -> bool:
    """Print ``usage`` for -h/--help, or the version for --version, without composing a config
    (Hydra's help is slow); True when the command has nothing more to do."""
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        print(usage, end="")
        return True
    if "--version" in sys.argv[1:]:
        print(f"litlab {__version__}")
        return True
    return False


@contextmanager
def user_errors(prog: str = "litlab", on_error: Callable[[], None] | None = None) -> Iterator[None]:
    """A mistake the user can fix (``LitlabError``) ends the process with one line,
    ``<prog>: error: <what to do>``, and status 1; ``on_error`` tidies up first."""
    try:
        yield
    except LitlabError as err:
        if on_error is not None:
            on_error()
        sys.exit(f"{prog}: error: {err}")


def run_command(work: Callable[[DictConfig], object], cfg: DictConfig, example: str):
    """``work(cfg)`` for a command that needs a trained run (``ckpt_path``); it gets its own
    run dir, which a refused command leaves behind empty-handed, so it is removed."""
    with user_errors(on_error=lambda: discard_refused_run(cfg, own_dir=True)):
        if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
            raise LitlabError(f"give the run to use: {example}")
        return work(cfg)
