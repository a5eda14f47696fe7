"""One search space, three readers: Hydra's sweep syntax parsed once, then handed to Optuna
(distributions) or W&B Sweeps (a ``parameters`` block).

A space is a mapping ``override key -> Hydra sweep expression``, e.g.::

    model.optimizer.lr: tag(log, interval(1e-4, 1e-1))   # float, log scale
    model.hidden_size: tag(int, interval(4, 64))          # int (Hydra intervals are floats)
    data.batch_size: choice(32, 64, 128)                  # categorical
    model.degree: range(1, 6)                             # ints 1..5 (stop excluded, as in Hydra)
    trainer.max_epochs: 20                                # fixed for every trial

On the command line, ``hparams_search.params.<key>=<expression>`` changes the entry ``<key>``
(``apply_overrides``), with Hydra's ``+``, ``++`` and ``~`` prefixes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, OverrideType, RangeSweep
from hydra.errors import HydraException

from litlab import LitlabError, first_line

Scalar = None | bool | int | float | str
_TAGS = {"log", "int"}


@dataclass(frozen=True)
class Param:
    """One key of the space. ``kind``: choice, range, interval or fixed."""

    key: str
    kind: str
    values: tuple[Scalar, ...] = ()  # choice: the options; fixed: the one value
    low: float = 0.0  # range and interval bounds (range: first and last value)
    high: float = 0.0
    step: float | None = None
    log: bool = False
    integer: bool = False

    def suggest(self, trial) -> Scalar:
        """This parameter's value for an Optuna trial."""
        if self.kind == "fixed":
            return self.values[0]
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, self.values)
        if self.integer:
            low, high, step = int(self.low), int(self.high), int(self.step or 1)
            return trial.suggest_int(self.key, low, high, step=step, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        """What Optuna draws from, in words: compared when a sweep joins a study by name."""
        if self.kind == "fixed":
            return format_value(self.values[0])
        if self.kind == "choice":
            return f"choice({', '.join(format_value(v) for v in self.values)})"
        kind, cast = ("int", int) if self.integer else ("float", float)
        step = f" step {cast(self.step)}" if self.step is not None else ""
        return f"{'log ' if self.log else ''}{kind} in [{cast(self.low)}, {cast(self.high)}]{step}"

    def wandb(self) -> dict[str, Any]:
        """The W&B Sweeps spelling; values are what ``${args_no_hyphens}`` turns back into text."""
        if self.kind == "fixed":
            return {"value": _wandb_value(self.values[0])}
        if self.kind == "choice":
            return {"values": [_wandb_value(v) for v in self.values]}
        if self.kind == "range":  # W&B has no stepped distribution: list the grid
            return {"values": range_values(self.low, self.high, self.step, self.integer)}
        if self.integer and self.log:
            # W&B's q_log_uniform_values yields floats (64.0), which an int argument refuses.
            raise LitlabError(
                f"{self.key}: tag(int, log, interval(...)) has no W&B equivalent that yields "
                "integers; use choice(...) or range(...) for it."
            )
        if self.integer:
            return {"distribution": "int_uniform", "min": int(self.low), "max": int(self.high)}
        dist = "log_uniform_values" if self.log else "uniform"
        return {"distribution": dist, "min": self.low, "max": self.high}


def range_values(low: float, high: float, step: float | None, integer: bool) -> list:
    """``low, low + step, ..., high`` (integers if ``integer``)."""
    n = round((high - low) / (step or 1)) + 1
    values = [low + i * (step or 1) for i in range(n)]
    return [int(v) for v in values] if integer else [round(v, 12) for v in values]


def _wandb_value(v: Scalar) -> Scalar:
    # W&B writes str(value) into the command: None and True would reach Hydra as strings.
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def _tags(sweep) -> set[str]:
    unknown = set(sweep.tags) - _TAGS
    if unknown:
        raise LitlabError(f"unknown tag(s) {sorted(unknown)}: litlab knows log and int.")
    return set(sweep.tags)


def parse_param(key: str, expr: Any) -> Param:
    """Parse one ``key: expression`` of a search space with Hydra's own override grammar."""
    _refuse_list(key, expr)
    text = f"{key}={expr}" if isinstance(expr, str) else f"{key}={format_value(expr)}"
    try:
        override = OverridesParser.create().parse_override(text)
    except HydraException as err:
        raise LitlabError(f"search space {key}: {expr!r} is no Hydra sweep: {err}") from err
    if not override.is_sweep_override():
        return Param(key, "fixed", (override.value(),))
    sweep = override.value()
    where = f"search space {key}"
    if isinstance(sweep, ChoiceSweep):
        _tags(sweep)
        values = tuple(sweep.list)
        if not all(v is None or isinstance(v, bool | int | float | str) for v in values):
            raise LitlabError(f"{where}: choice(...) options must be single values, not lists.")
        return Param(key, "choice", values)
    if isinstance(sweep, RangeSweep):
        _tags(sweep)
        values = list(override.sweep_iterator())
        if not values:
            raise LitlabError(f"{where}: {expr} is empty.")
        integer = all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step))
        return Param(key, "range", low=values[0], high=values[-1], step=sweep.step, integer=integer)
    if isinstance(sweep, IntervalSweep):
        tags = _tags(sweep)
        low, high = float(sweep.start), float(sweep.end)
        if not low < high:
            raise LitlabError(f"{where}: interval({low}, {high}) needs low < high.")
        if "log" in tags and low <= 0:
            raise LitlabError(f"{where}: a log interval needs a positive lower bound.")
        return Param(key, "interval", low=low, high=high, log="log" in tags, integer="int" in tags)
    raise LitlabError(f"{where}: {expr} is not supported; use choice, range or interval.")


def _refuse_list(key: str, expr: Any) -> None:
    """A list (in YAML, or ``hparams_search.params.<key>=[a,b]``) is not a sweep: it might mean
    options to search or one value for every trial, so it is refused, naming both spellings."""
    if isinstance(expr, Sequence) and not isinstance(expr, str):
        options = ", ".join(map(str, expr))
        raise LitlabError(
            f"search space {key}: [{options}] is a list; to search over these values write "
            f"choice({options}); a value every trial shares goes on the command line "
            f"({key}=...), not in the search space."
        )


def parse_space(params: Mapping[str, Any] | None) -> list[Param]:
    """``hparams_search.params`` as a list of ``Param``; an empty space is refused."""
    if not params:
        raise LitlabError(
            "The search space is empty: give hparams_search.params, e.g. "
            "model.optimizer.lr: tag(log, interval(1e-4, 1e-1))."
        )
    return [parse_param(k, v) for k, v in _flatten(params).items()]


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{model: {optimizer: {lr: x}}}`` -> ``{model.optimizer.lr: x}``: a space file may write
    its keys nested."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        inner = _flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping) else {}
        for name, expr in inner.items() if inner else [(f"{prefix}{key}", value)]:
            if name in flat:
                raise LitlabError(f"search space: {name} is given twice (nested and dotted).")
            flat[name] = expr
    return flat


SPACE_KEY = "hparams_search.params."


def is_space_override(text: str) -> bool:
    """``hparams_search.params.<key>=...``: an override that ``apply_overrides`` applies."""
    return text.lstrip("+~").startswith(SPACE_KEY)


def apply_overrides(params: Mapping[str, Any] | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The search space (flattened) with the command line's changes to its entries.

    Hydra reads every dot of ``hparams_search.params.model.optimizer.lr=...`` as nesting, so
    it cannot reach the entry ``model.optimizer.lr``: litlab-sweep hands such overrides to this
    function instead of to Hydra. All after ``params.`` is the entry's key; Hydra's prefixes
    keep their meaning (``key=`` changes an entry, ``+key=`` adds one, ``++key=`` either,
    ``~key`` removes one), and the value is read as in the file: ``choice(4, 16)`` needs no
    quotes of its own.
    """
    space = _flatten(params or {})
    for text in overrides:
        try:
            parsed = OverridesParser.create().parse_override(text)
        except HydraException as err:
            raise LitlabError(f"{text} is no Hydra override: {first_line(err)}") from err
        key, kind = parsed.key_or_group[len(SPACE_KEY) :], parsed.type
        if key not in space and kind in (OverrideType.CHANGE, OverrideType.DEL):
            raise LitlabError(
                f"{text}: the search space has no {key} (it has {', '.join(space) or 'none'}); "
                f"add one with +{SPACE_KEY}{key}=..."
            )
        if key in space and kind == OverrideType.ADD:
            raise LitlabError(f"{text}: the search space has {key} already; drop the +.")
        if kind == OverrideType.DEL:
            del space[key]
        else:  # a sweep as typed (the file's syntax); else the value Hydra read (quotes off)
            space[key] = text.partition("=")[2] if parsed.is_sweep_override() else parsed.value()
    return space


_PLAIN = re.compile(r"[A-Za-z_][\w./-]*")


def format_value(v: Scalar) -> str:
    """A value as text Hydra's override parser reads back to the same value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)  # 0.001, 1e-05, inf, nan: all read back as floats
    if isinstance(v, int):
        return str(v)
    if _PLAIN.fullmatch(v) and v.lower() not in ("null", "true", "false", "nan", "inf"):
        return v
    return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override(key: str, value: Scalar) -> str:
    """``key=value`` as Hydra reads it back (``format_value``)."""
    return f"{key}={format_value(value)}"
