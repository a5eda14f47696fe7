"""Where the configs live, and checks that catch a bad config before any work starts."""

from __future__ import annotations

import inspect
import types
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab import LitlabError


def _config_dir() -> Path:
    """``litlab/configs/`` inside an installed wheel (pyproject.toml maps the package
    ``litlab.configs`` to the repository's ``configs/``); in a clone (an editable install) that
    folder is not in src/, and the configs are read where they are edited, at the root."""
    package = Path(__file__).resolve().parent
    shipped = package / "configs"
    return shipped if shipped.is_dir() else package.parents[1] / "configs"


CONFIG_DIR = _config_dir()


def run_dir(ckpt_path: str | None, new_dir: str) -> str:
    """The run directory: a resumed run continues in the directory of the run it resumes."""
    if not ckpt_path:
        return new_dir
    path = Path(ckpt_path).expanduser().resolve()
    if path.suffix == ".ckpt":  # <run>/checkpoints/last.ckpt
        return str(path.parent.parent)
    return str(path)


def hydra_subdir(ckpt_path: str | None) -> str | None:
    """Where Hydra saves the composed config: ``.hydra/`` of a new run. A resume saves none,
    so the run's own ``.hydra/`` keeps the command that started it; each resume's command and
    overrides go to ``history`` in run.json instead."""
    return None if ckpt_path else ".hydra"


def fast_precision(accelerator: str) -> str:
    """bf16 mixed precision where the hardware runs it natively, else full fp32.

    CPUs with AMX or AVX512-BF16 run bf16 convolutions several times faster than fp32; on
    others bf16 is emulated and slower, so they keep fp32.
    """
    if accelerator in ("auto", "gpu", "cuda"):
        import torch

        if torch.cuda.is_available():
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu"):
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            flags = []
        if "amx_bf16" in flags or "avx512_bf16" in flags:
            return "bf16-mixed"
    return "32-true"


def wandb_mode() -> str:
    from litlab.tracking import wandb_mode  # imports Lightning: only once a config is resolved

    return wandb_mode()


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("litlab_run_dir", run_dir, replace=True)
    OmegaConf.register_new_resolver("litlab_hydra_subdir", hydra_subdir, replace=True)
    OmegaConf.register_new_resolver("litlab_fast_precision", fast_precision, replace=True)
    OmegaConf.register_new_resolver("litlab_wandb_mode", wandb_mode, replace=True)


def to_plain(cfg: DictConfig) -> dict:
    """The config as plain Python values, every ``${...}`` resolved; ``hydra`` itself left out."""
    return OmegaConf.to_container(cfg, resolve=True)


def _signatures(target: Any) -> tuple[dict[str, inspect.Parameter], dict[str, Any], bool]:
    """The keyword arguments ``target`` takes and their type hints, following ``**kwargs`` up the
    class hierarchy (a subclass passing ``**kwargs`` to its parent takes the parent's arguments,
    with the parent's types). The flag says whether any keyword is accepted."""
    params: dict[str, inspect.Parameter] = {}
    hints: dict[str, Any] = {}
    owners = (
        [k for k in target.__mro__ if "__init__" in vars(k)]
        if inspect.isclass(target)
        else [target]
    )
    for owner in owners:
        func = owner.__init__ if inspect.isclass(owner) else owner
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            return params, hints, True
        for name, hint in _hints(func).items():
            hints.setdefault(name, hint)
        for name, p in sig.parameters.items():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self":
                params.setdefault(name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            return params, hints, False
    return params, hints, True


def _hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: skip the type check, keep the name check
        return {}


_SIMPLE = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def _type_error(value: Any, hint: Any) -> str | None:
    """A message if ``value`` clearly is not of the simple type ``hint``; None when it fits."""
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    if not all(o in _SIMPLE or o is type(None) for o in options):
        return None  # not a simple scalar type: not checked here
    if value is None:
        return None if type(None) in options else "may not be null"
    ok = any(
        isinstance(value, _SIMPLE[o]) and not (o is not bool and isinstance(value, bool))
        for o in options
        if o in _SIMPLE
    )
    names = " or ".join("null" if o is type(None) else o.__name__ for o in options)
    return None if ok else f"expects {names}"


def check_targets(cfg: Any, path: str = "") -> None:
    """Every ``_target_`` exists and accepts the keys its node gives it, with fitting types."""
    from hydra.utils import get_object

    if isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg):
            check_targets(item, f"{path}[{i}]")
        return
    if not isinstance(cfg, DictConfig):
        return
    where = path or "<root>"
    if "_target_" in cfg:
        try:
            target = get_object(cfg._target_)
        except Exception as err:
            raise LitlabError(f"{where}._target_: cannot import {cfg._target_!r} ({err}).") from err
        params, hints, open_kwargs = _signatures(target)
        for key in cfg:
            if str(key).startswith("_"):
                continue
            if key not in params and not open_kwargs:
                raise LitlabError(
                    f"{where}.{key}: {cfg._target_} takes no argument {key!r}. "
                    f"It takes: {', '.join(sorted(params)) or 'nothing'}."
                )
            if key in hints and not OmegaConf.is_missing(cfg, key):
                problem = _type_error(cfg[key], hints[key])
                if problem:
                    raise LitlabError(f"{where}.{key}={cfg[key]!r}: {problem}.")
    for key in cfg:
        if not OmegaConf.is_missing(cfg, key):
            check_targets(cfg[key], f"{path}.{key}" if path else str(key))


def compose(
    overrides: list[str] | tuple[str, ...] = (),
    output_dir: str | Path | None = None,
    config_name: str = "train",
) -> DictConfig:
    """A config as ``litlab-train`` would compose it, for notebooks and tests.

    Outside a Hydra app there is no run directory: ``output_dir`` (default: a new temporary
    directory) stands in for it, and relative paths start from the current directory.
    """
    import os
    import tempfile

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name, overrides=list(overrides), return_hydra_config=True)
    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="litlab-"))
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out.resolve())
        cfg.hydra.runtime.cwd = os.getcwd()
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
