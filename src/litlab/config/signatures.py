"""Each ``_target_`` checked against its signature before anything is built: a key it does not
take, or a value of the wrong simple type, is one line naming the key."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab import LitlabError


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
    if isinstance(cfg, ListConfig):
        for i, item in enumerate(cfg):
            check_targets(item, f"{path}[{i}]")
        return
    if not isinstance(cfg, DictConfig):
        return
    if "_target_" in cfg:
        _check_node(cfg, path or "<root>")
    for key in cfg:
        if not OmegaConf.is_missing(cfg, key):
            check_targets(cfg[key], f"{path}.{key}" if path else str(key))


def _check_node(cfg: DictConfig, where: str) -> None:
    """The keys of one node with a ``_target_``, against that target's signature."""
    from hydra.utils import get_object

    try:
        target = get_object(cfg._target_)
    except Exception as err:
        raise LitlabError(f"{where}._target_: cannot import {cfg._target_!r} ({err}).") from err
    params, hints, open_kwargs = _signatures(target)
    for key in (k for k in cfg if not str(k).startswith("_")):
        if key not in params and not open_kwargs:
            raise LitlabError(
                f"{where}.{key}: {cfg._target_} takes no argument {key!r}. "
                f"It takes: {', '.join(sorted(params)) or 'nothing'}."
            )
        if key in hints and not OmegaConf.is_missing(cfg, key):
            problem = _type_error(cfg[key], hints[key])
            if problem:
                raise LitlabError(f"{where}.{key}={cfg[key]!r}: {problem}.")
