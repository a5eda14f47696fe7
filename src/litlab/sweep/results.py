"""The table every sweep ends with: each trial's parameters, status and metrics, best first,
plus the best configuration as a command line. Grids (``litlab-train -m``, see ``grid``) and
Optuna (``optuna_search``) both hand it ``TrialRow``s.

Written as ``results.csv`` and ``results.md`` in the sweep dir. When the sweep varies ``seed`` or
``data.fold`` (cross-validation), ``results_by_config.csv`` and a second Markdown table give
mean +- std over them per configuration.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litlab.files import write_text

REPEATS = ("seed", "data.fold")  # keys whose runs are repeats of one configuration


@dataclass
class TrialRow:
    """One trial (Optuna) or job (grid)."""

    name: str
    overrides: list[str]  # everything needed to rerun it with litlab-train
    status: str  # complete, pruned, failed, running; a grid job also cancelled (scancel)
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "complete" and finite(self.objective)


def finite(x: Any) -> bool:
    """A number that can be ranked: not None, NaN or infinite."""
    return isinstance(x, int | float) and math.isfinite(x)


def _split(override: str) -> tuple[str, str]:
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def varied_keys(rows: Sequence[TrialRow]) -> list[str]:
    """The override keys whose value differs between trials: the table's parameter columns."""
    seen: dict[str, set[str]] = {}
    for row in rows:
        for o in row.overrides:
            key, value = _split(o)
            seen.setdefault(key, set()).add(value)
    varied = [k for k, v in seen.items() if len(v) > 1 or len(rows) == 1]
    return varied or list(seen)


def params_of(row: TrialRow) -> dict[str, str]:
    """A row's overrides as ``{key: value}``."""
    return dict(_split(o) for o in row.overrides)


def rank(rows: Sequence[TrialRow], mode: str) -> list[TrialRow]:
    """Best first: finished trials by objective, then the rest (pruned, failed) in order."""
    sign = -1.0 if mode.startswith("max") else 1.0
    done = sorted((r for r in rows if r.ok), key=lambda r: sign * r.objective)
    return done + [r for r in rows if not r.ok]


def _fmt(x: Any) -> str:
    if isinstance(x, str) and "." in x:  # a sampled float param: full precision is in the CSV
        try:
            return f"{float(x):.6g}"
        except ValueError:
            return x
    if isinstance(x, float):
        return f"{x:.6g}"
    return "" if x is None else str(x)


def _metric_keys(rows: Sequence[TrialRow], metric: str) -> list[str]:
    # Imported here: tracking.report imports Lightning, and the grid callback (which imports this
    # module) is loaded by every litlab-train -m, including those refused before any job.
    from litlab.tracking.report import final_metrics

    keys = {k for r in rows for k in final_metrics(r.metrics)}
    keys.discard(metric)
    return [metric, *sorted(keys)]


def _markdown(header: list[str], table: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in table]
    return "\n".join(lines)


def _csv_text(header: list[str], table: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([["" if c is None else c for c in row] for row in table])
    return buf.getvalue()


@dataclass
class _Group:
    overrides: list[str]
    rows: list[TrialRow]

    def stats(self, key: str) -> tuple[float, float] | None:
        values = [r.objective if key == "objective" else r.metrics.get(key) for r in self.rows]
        values = [v for r, v in zip(self.rows, values, strict=True) if r.ok and finite(v)]
        if not values:
            return None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _by_config(rows: Sequence[TrialRow]) -> list[_Group]:
    groups: dict[tuple[str, ...], _Group] = {}
    for row in rows:
        rest = [o for o in row.overrides if _split(o)[0] not in REPEATS]
        groups.setdefault(tuple(rest), _Group(rest, [])).rows.append(row)
    return list(groups.values())


def write_results(
    rows: Sequence[TrialRow],
    out_dir: str | Path,
    metric: str,
    mode: str,
    prefix: Sequence[str] = ("litlab-train",),
) -> Path:
    """Write the tables into ``out_dir``; returns results.md's path.

    Each file is replaced whole (``litlab.files.write_text``): the jobs of a SLURM grid refresh
    the table concurrently, and a reader never sees half of one.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ranked = rank(rows, mode)
    params = varied_keys(ranked)
    metrics = _metric_keys(ranked, metric)
    header = ["trial", *params, "status", *metrics, "run_dir", "error"]
    table = [
        [r.name, *(params_of(r).get(k) for k in params), r.status]
        + [r.objective if k == metric else r.metrics.get(k) for k in metrics]
        + [r.run_dir, r.error]
        for r in ranked
    ]
    write_text(out / "results.csv", _csv_text(header, table))

    direction = "higher" if mode.startswith("max") else "lower"
    done = sum(r.ok for r in ranked)
    md = [
        f"# Sweep results: {metric} ({direction} is better)",
        "",
        f"{len(ranked)} trial{'s' if len(ranked) != 1 else ''}: {done} complete, "
        + ", ".join(
            f"{sum(r.status == s for r in ranked)} {s}"
            for s in ("pruned", "failed", "running")
            if any(r.status == s for r in ranked)
        ),
    ]
    md[-1] = md[-1].rstrip(", ")
    repeats = {k: _values(ranked, k) for k in REPEATS if len(_values(ranked, k)) > 1}
    if repeats:
        md += _repeats_section(ranked, out, metric, mode, prefix, repeats)
    elif done:
        best = shlex.join([*prefix, *ranked[0].overrides])  # reruns the best trial
        md += ["", "Best configuration:", "", "```bash", best, "```"]
    short = [c for c in header if c not in ("run_dir", "error")]
    md += ["", "## Trials, best first", "", _markdown(short, [row[: len(short)] for row in table])]
    failed = [r for r in ranked if r.error]
    if failed:
        md += ["", "## Errors", ""] + [f"- trial {r.name}: {r.error}" for r in failed]
    md += ["", "Run dirs and errors: results.csv", ""]
    write_text(out / "results.md", "\n".join(md))
    return out / "results.md"


def _values(rows: Sequence[TrialRow], key: str) -> list[str]:
    """The values ``key`` takes over the rows, in numeric order."""
    return sorted({params_of(r).get(key) for r in rows} - {None}, key=lambda s: (len(s), s))


def _repeats_section(rows, out: Path, metric, mode, prefix, repeats) -> list[str]:
    """Mean +- std over seeds and folds for each configuration; the best by mean first."""
    sign = -1.0 if mode.startswith("max") else 1.0
    groups = _by_config(rows)

    def order(g: _Group) -> tuple[bool, float]:
        stats = g.stats("objective")
        return stats is None, sign * stats[0] if stats else 0.0

    groups.sort(key=order)
    params = [k for k in varied_keys(rows) if k not in REPEATS]
    metrics = _metric_keys(rows, metric)
    header = ["config", *params, "runs", "complete"]
    table_csv, table_md = [], []
    for i, g in enumerate(groups):
        p = params_of(g.rows[0])
        stats = [g.stats("objective" if k == metric else k) for k in metrics]
        base = [i, *(p.get(k) for k in params), len(g.rows), sum(r.ok for r in g.rows)]
        table_csv.append(base + [x for s in stats for x in (s or (None, None))])
        table_md.append(base + [f"{s[0]:.6g} ± {s[1]:.2g}" if s else "" for s in stats])
    csv_header = header + [f"{k} {w}" for k in metrics for w in ("mean", "std")]
    write_text(out / "results_by_config.csv", _csv_text(csv_header, table_csv))
    over = [f"{'seeds' if k == 'seed' else 'folds'} {','.join(v)}" for k, v in repeats.items()]
    return [
        "",
        f"Best configuration over {' and '.join(over)} (mean of {metric}):",
        "",
        "```bash",
        shlex.join(
            [
                *prefix,
                "-m",
                *groups[0].overrides,
                *(f"{k}={','.join(v)}" for k, v in repeats.items()),
            ]
        ),
        "```",
        "",
        "## Mean ± std per configuration",
        "",
        _markdown([*header, *metrics], table_md),
    ]
