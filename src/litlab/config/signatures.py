"""Each ``_target_`` checked against its signature before anything is built: a key it does not
take, or a value outside its type hint, is one line naming the key.

A hint says the range too: ``batch_size: Count`` (``Annotated[int, Ge(1)]``, from
``litlab.config.values``) refuses 0, so a task's checks sit beside its arguments. Classes
litlab does not own (Trainer, callbacks, optimizers) get theirs from ``values.foreign_hints``.
"""

from __future__ import annotations

import inspect
import math
import operator
import types
import typing
from collections.abc import Sequence
from typing import Any

import annotated_types as at
from omegaconf import DictConfig, ListConfig, OmegaConf

from litlab import LitlabError
from litlab.config.values import foreign_hints


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
        return typing.get_type_hints(func, include_extras=True)  # extras: keep Annotated
    except Exception:  # unresolvable annotations: skip the type check, keep the name check
        return {}


# Config numbers are finite: no run can use nan or inf as a size, a rate or a bound.
_SIMPLE = {
    int: ("an integer", lambda v: isinstance(v, int)),
    float: ("a finite number", lambda v: isinstance(v, int | float) and math.isfinite(v)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}
_BOUNDS = {at.Gt: ">", at.Ge: ">=", at.Lt: "<", at.Le: "<="}
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _options(hint: Any) -> tuple:
    """The alternatives of a union (``a | b``, ``Optional``), or the hint alone."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    return typing.get_args(hint) if union else (hint,)


def _bounds(metadata: tuple) -> list[tuple[str, float]]:
    """``(">=", 1)`` for ``Ge(1)``, and so on for ``Gt``/``Lt``/``Le`` (``Interval`` groups
    them); other metadata of annotated-types is refused, not ignored."""
    bounds = []
    for m in (m for g in metadata for m in (g if isinstance(g, at.GroupedMetadata) else [g])):
        if type(m) in _BOUNDS:  # Ge(1).ge == 1
            bounds.append((_BOUNDS[type(m)], getattr(m, type(m).__name__.lower())))
        elif isinstance(m, at.BaseMetadata):
            raise LitlabError(f"litlab's range check reads Gt, Ge, Lt, Le, Interval, not {m!r}.")
    return bounds


def _sequence(hint: Any) -> tuple[Any, int | None] | None:
    """``(item hint, length or None)`` of a list hint (``list[int]``, ``tuple[int, int]``,
    ``Sequence[int]``); None for any other hint, or a tuple of mixed items."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    mixed = any(a not in (args[0], Ellipsis) for a in args)
    if mixed or (hint not in (list, tuple) and origin not in (list, tuple, Sequence)):
        return None
    fixed = origin is tuple and args and args[-1] is not Ellipsis
    return (args[0] if args else Any), (len(args) if fixed else None)


def fits(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` fits ``hint``; None where this check cannot tell (a class, a callable)."""
    results = {_fits_one(value, option) for option in _options(hint)}
    return True if True in results else None if None in results else False


def _fits_one(value: Any, hint: Any) -> bool | None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin is typing.Annotated:
        base = fits(value, args[0])
        return base and all(_COMPARE[s](value, b) for s, b in _bounds(args[1:]))
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint in _SIMPLE:  # a bool is an int to Python, never to a config
        return (hint is bool or not isinstance(value, bool)) and _SIMPLE[hint][1](value)
    if sequence := _sequence(hint):
        item, length = sequence
        return (
            isinstance(value, list | tuple)
            and length in (None, len(value))
            and all(fits(v, item) is not False for v in value)
        )
    return None


def describe(hint: Any) -> str:
    """``hint`` in words: ``an integer >= 1, or -1, or null``."""
    words = []
    for option in _options(hint):
        origin, args = typing.get_origin(option), typing.get_args(option)
        if option is type(None):
            words.append("null")
        elif origin is typing.Annotated:
            ends = " and ".join(f"{s} {b:g}" for s, b in _bounds(args[1:]))
            words.append(f"{describe(args[0])} {ends}".strip())
        elif origin is typing.Literal:
            words += [repr(a) for a in args]
        elif option in _SIMPLE:
            words.append(_SIMPLE[option][0])
        elif sequence := _sequence(option):
            item, length = sequence
            each = "" if item is Any else f", each {describe(item)}"
            words.append(f"a list{f' of {length}' if length else ''}{each}")
        else:
            words.append(getattr(option, "__name__", str(option)))
    return ", or ".join(words)


def check_targets(cfg: Any, path: str = "") -> None:
    """Every ``_target_`` exists and accepts the keys its node gives it, with fitting values."""
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
    hints.update(foreign_hints(target))
    for key in (k for k in cfg if not str(k).startswith("_")):
        if key not in params and not open_kwargs:
            raise LitlabError(
                f"{where}.{key}: {cfg._target_} takes no argument {key!r}. "
                f"It takes: {', '.join(sorted(params)) or 'nothing'}."
            )
        hint = hints.get(key)
        if hint is None or OmegaConf.is_missing(cfg, key):
            continue
        value = cfg[key]
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if fits(value, hint) is False:
            raise LitlabError(f"{where}.{key}={value!r} is not allowed: {describe(hint)}.")
