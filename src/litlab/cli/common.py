"""What the console scripts share: --help, paths on the command line, and how a mistake, a
refused run, an unwritable run dir and a Ctrl+C end."""

from __future__ import annotations

import gc
import logging
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from typing_extensions import override

from litlab import Interrupted, LitlabError, __version__, first_line
from litlab.config import CONFIG_DIR, version_base
from litlab.config.resolvers import LATEST
from litlab.files import check_writable

# The options whose value is a path: the ones quoted for Hydra (see ``quote_paths``).
PATH_KEYS = {
    "ckpt_path",
    "init_from",
    "input",
    "output",
    "data_dir",
    "paths.log_dir",
    "paths.data_dir",
    "paths.root_dir",
}


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


def load_torch() -> None:
    """Import torch and Lightning (with torchmetrics, torchvision, matplotlib), the first time in
    this process, with the cyclic garbage collector paused; then freeze all they made
    (``gc.freeze``) and let it run again. Each command calls this once its arguments are checked.

    Their ~700k objects live as long as the process. While they load, the collector walks them
    again and again and frees almost nothing: ~0.45 s of a run's start on a 2-core CPU. Frozen,
    no later collection walks them, in training neither (docs/benchmarks.md). The garbage the
    imports leave (~13k objects, well under a MB) is frozen with them. Where Lightning is
    already loaded (a test calling a command's ``main``), this does nothing.
    """
    if "lightning" in sys.modules or not gc.isenabled():
        return
    gc.disable()
    try:
        import lightning  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()


def quiet_lightning() -> None:
    """Hide three of Lightning's messages that are not about a litlab run, from the terminal and
    train.log: its "`srun` is available but not used" hint (litlab-sweep starts Slurm jobs
    itself), its "Tip: ... install litlogger/litmodels" adverts, and torch's FutureWarning about
    ``LeafSpec``, which Lightning's own batch handling triggers in every run (nothing a user can
    change). Every other one passes."""
    warnings.filterwarnings("ignore", message="The `srun` command is available on your system")
    leaf_spec = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
    warnings.filterwarnings("ignore", message=leaf_spec, category=FutureWarning)
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


def discard_empty_run_dir(cfg: DictConfig, own_dir: bool = False) -> None:
    """A command that ends with nothing written in its run dir leaves no directory behind.

    Hydra creates the run dir (with ``.hydra/`` and the job's log) before litlab sees the
    config; when litlab then refuses the run, when it is stopped (Ctrl+C) before it starts, or
    when it writes its output elsewhere (``litlab-predict output=...``), nothing in there is a
    record.
    The directory of a resumed run is never touched (``own_dir``: the command always gets a
    new one, as ``litlab-eval`` does); nor is it by DDP ranks other than 0, which may end first.
    """
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.utilities import rank_zero_only

    from litlab.tracking import manifest  # not at the top: --help must not import torch

    ckpt_path = OmegaConf.select(cfg, "ckpt_path", throw_on_missing=False)
    # ckpt_path=latest is still "latest" only when no run was found: its dir is a new one.
    resumes = ckpt_path and ckpt_path != LATEST and not own_dir
    if resumes or not HydraConfig.initialized() or rank_zero_only.rank != 0:
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if not run_dir.is_dir() or (run_dir / manifest.FILENAME).exists():
        return
    # Hydra's: .hydra/ and each process's log (<job>.log; DDP ranks' <job>_ddp_process_1.log).
    if all(p.name == ".hydra" or p.suffix == ".log" for p in run_dir.iterdir()):
        shutil.rmtree(run_dir, ignore_errors=True)
        log_dir = Path(cfg.paths.log_dir).absolute()
        for parent in run_dir.parents:  # logs/predict/runs/, logs/predict/ if empty now
            if parent == log_dir or not parent.is_relative_to(log_dir) or any(parent.iterdir()):
                break
            parent.rmdir()


class WritableRunDir(Callback):
    """A run dir that cannot be written (a read-only log dir, ``LITLAB_LOG_DIR`` naming a file)
    ends the command in one line saying what to do, before Hydra tries to make it and fails in
    a traceback. Registered in configs/hydra/default.yaml."""

    @override
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from litlab.config.resolvers import run_dir

        where = _planned_dir(config, "hydra.run.dir")
        ckpt_path = OmegaConf.select(config, "ckpt_path", throw_on_missing=False)
        resumed = ckpt_path and where == Path(run_dir(ckpt_path, ""))  # litlab-train's resume
        _exit_unless_writable(where, RESUME_REMEDY if resumed else LOG_DIR_REMEDY)

    @override
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _exit_unless_writable(_planned_dir(config, "hydra.sweep.dir"), LOG_DIR_REMEDY)


LOG_DIR_REMEDY = "point LITLAB_LOG_DIR (or paths.log_dir=...) at a folder you can write to"
NO_DOLLAR_REMEDY = "point LITLAB_LOG_DIR (or paths.log_dir=...) at a folder whose path has no '${'"


def _planned_dir(config: DictConfig, key: str) -> Path:
    """The run (or sweep) dir Hydra is about to make, or one line saying why there is none.

    Hydra stores the resolved dir as a string and reads it back as a config value, so a path
    holding ``${`` (``LITLAB_LOG_DIR=/data/a${b}``) is then read as an interpolation: a
    traceback midway through Hydra's set-up. Typed on the command line, the same ``${b}`` fails
    to resolve here already."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf.errors import OmegaConfBaseException

    HydraConfig.instance().set_config(config)  # as Hydra does next, for ${hydra:...} paths
    try:
        where = str(OmegaConf.select(config, key, throw_on_missing=True))
    except OmegaConfBaseException as err:
        sys.exit(f"litlab: error: {key} cannot be resolved ({first_line(err)}): {NO_DOLLAR_REMEDY}")
    if "${" in where:
        sys.exit(f"litlab: error: cannot make a run dir in {where}: {NO_DOLLAR_REMEDY}")
    return Path(where)


RESUME_REMEDY = (
    "a run continues in its own folder: copy the run to a folder you can write to and continue "
    "the copy"
)


def _exit_unless_writable(directory: Path, remedy: str) -> None:
    # SystemExit, not LitlabError: Hydra turns a callback's exceptions into warnings.
    try:
        check_writable(directory, remedy)
    except LitlabError as err:
        sys.exit(f"litlab: error: {err}")


def quote_paths(argv: list[str]) -> list[str]:
    """``argv`` with each path option (``PATH_KEYS``) that Hydra's grammar cannot read as typed
    quoted for it, so that ``ckpt_path=runs/dir with space/ünïcödé`` works as bash hands it
    over (Hydra refuses letters outside ASCII, brackets, ``#``... outside quotes). Every
    other argument, and a path Hydra reads as it is, is left alone."""
    quoted = []
    for arg in argv:
        key, equals, value = arg.partition("=")
        if equals and key.lstrip("+~") in PATH_KEYS and _hydra_reads(arg) is REFUSED:
            arg = f"{key}={_hydra_quoted(value)}"
        quoted.append(arg)
    return quoted


def experiment_as_key(argv: list[str]) -> list[str]:
    """``argv`` of litlab-eval, -predict or -export, with ``experiment=<name>`` (the experiment
    whose newest run ``ckpt_path=latest`` takes) passed on as ``experiment_name=<name>``: Hydra
    reads ``experiment=`` as the config group litlab-train composes, and these commands, which
    take their model and data from the run, refuse that group. Only ``latest`` reads it: with
    any other ``ckpt_path`` (or none) it is refused in one line, not ignored."""
    pairs = [arg.partition("=") for arg in argv]
    named = [f"{k}={v}" for k, eq, v in pairs if eq and k.lstrip("+") in EXPERIMENT_KEYS]
    latest = any(k.lstrip("+") == "ckpt_path" and v.strip("'\"") == LATEST for k, _, v in pairs)
    if named and not latest:
        sys.exit(
            f"litlab: error: {named[0]} is read with ckpt_path={LATEST} only (the newest run of "
            "that experiment); a run dir or checkpoint brings its own: drop it, or add "
            f"ckpt_path={LATEST}."
        )
    return [
        "experiment_name=" + arg.partition("=")[2] if arg.startswith("experiment=") else arg
        for arg in argv
    ]


EXPERIMENT_KEYS = ("experiment", "experiment_name")


def path_override(key: str, path: str | Path) -> str:
    """``key=path`` as Hydra's grammar reads back ``path`` unchanged: as it is where it can,
    else quoted (``ckpt_path="runs/dir with space/ünïcödé"``)."""
    plain = f"{key}={path}"
    return plain if _hydra_reads(plain) == str(path) else f"{key}={_hydra_quoted(str(path))}"


REFUSED = object()  # what _hydra_reads gives for an argument Hydra's grammar cannot read


def _hydra_reads(arg: str) -> object:
    """The value Hydra's override grammar reads in ``arg`` (``key=value``), REFUSED if none."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(arg).value()
    except HydraException:
        return REFUSED


def _hydra_quoted(value: str) -> str:
    """``value`` in Hydra's quotes: double ones (the shell's single quotes keep them) unless it
    holds some; a quote inside is escaped, as is each backslash before a quote or at the end."""
    q = "'" if '"' in value and "'" not in value else '"'
    body = re.sub(rf"(\\*)({q}|$)", lambda m: m[1] * 2 + (f"\\{q}" if m[2] else ""), value)
    return f"{q}{body}{q}"


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
    ``<prog>: error: <what to do>``, and status 1; ``on_error`` tidies up first, as it does
    for a Ctrl+C (then ``interrupted_exit`` ends the process)."""
    try:
        yield
    except LitlabError as err:
        if on_error is not None:
            on_error()
        sys.exit(f"{prog}: error: {err}")
    except KeyboardInterrupt:
        if on_error is not None:
            on_error()
        raise


def run_command(
    work: Callable[[DictConfig], object], cfg: DictConfig, example: str, output: str | None = None
):
    """``work(cfg)`` for a command that needs a trained run (``ckpt_path``; ``latest``: the
    newest of ``experiment=``) and writes ``output`` (checked first: a folder it cannot write
    to is refused before any work). It gets its own run dir, removed again when nothing was
    written there: refused, or output written elsewhere."""
    tidy = lambda: discard_empty_run_dir(cfg, own_dir=True)  # noqa: E731
    with user_errors(on_error=tidy):
        if OmegaConf.is_missing(cfg, "ckpt_path") or not cfg.ckpt_path:
            raise LitlabError(f"give the run to use: {example}")
        if output:
            where = Path(output).expanduser().parent
            check_writable(where, "give output= a file in a folder you can write to")
        load_torch()
        from litlab.run.checkpoints import use_latest  # torch

        use_latest(cfg, cfg.experiment_name)
        done = work(cfg)
    tidy()
    return done
