"""Runs side by side: one row per run dir, read from the ``run.json`` each run leaves.

    litlab-compare logs/logistic                  # every run under a folder, as CSV
    litlab-compare logs/*/runs/* -k model.optimizer.lr -o runs.csv
    litlab-compare --diff RUN_A RUN_B             # what differs between two runs
    litlab-compare logs/linear -k model.optimizer.lr --plot val/loss -o lr.png

In Python, ``read_runs(paths)`` gives the rows (dicts), ``to_frame(rows)`` a pandas DataFrame
(pandas is optional), ``to_csv(rows)`` the CSV text, ``diff_runs(a, b)`` the lines of
``--diff``, ``plot_runs(rows, metric, key)`` the picture of ``--plot``. Works with any logger,
``logger=none`` included: the final metrics are in the manifest.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from litlab import LitlabError
from litlab.tracking.manifest import FILENAME
from litlab.tracking.report import final_metrics

COLUMNS = ("run_dir", "name", "status", "seed", "start_time", "overrides")


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Run dirs: each path is one, or a folder searched for them (multiruns included)."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if (path / FILENAME).is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob(FILENAME))
    return sorted(found)


def _lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def read_runs(paths: Iterable[str | Path], config_keys: Iterable[str] = ()) -> list[dict]:
    """One row per run: who it was, how it ended, chosen config values, then its final metrics."""
    rows = []
    for run_dir in find_runs(paths):
        m = _manifest(run_dir / FILENAME)
        if m is None:
            continue
        row = {
            "run_dir": str(run_dir),
            "name": m.get("name"),
            "status": m.get("status"),
            "seed": m.get("seed"),
            "start_time": m.get("start_time"),
            "overrides": " ".join(m.get("overrides") or []),
        }
        row.update({key: _lookup(m.get("config") or {}, key) for key in config_keys})
        row.update(final_metrics(m.get("metrics") or {}))
        rows.append(row)
    return rows


def _manifest(path: Path) -> dict | None:
    """The run.json at ``path``; None, with a one-line warning, if it is not a JSON object
    (cut short, empty, garbage, a list): such a run is skipped, not shown as a blank row."""
    try:
        data = json.loads(path.read_text())
        problem = None if isinstance(data, dict) else "not a JSON object"
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError included
        problem = str(err)
    if problem:
        print(f"litlab: warning: skipping {path}, not a run's record: {problem}", file=sys.stderr)
        return None
    return data


def _columns(rows: list[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    fixed = [c for c in seen if c in COLUMNS or "/" not in c]
    return fixed + sorted(c for c in seen if c not in fixed)  # metrics sorted: val/ next to val/


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV text, one column per metric and config key."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_frame(rows: list[dict]):
    """The rows as a pandas DataFrame (``pip install pandas``)."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("to_frame needs pandas: pip install pandas (or use to_csv)") from err
    return pd.DataFrame(rows, columns=_columns(rows))


def plot_runs(rows: list[dict], metric: str, key: str):
    """A matplotlib figure: ``metric`` against the config value ``key``, one point per run
    that has both, and the mean per value as a line. A number axis is logarithmic when its
    values are positive and span a factor of 100 or more (learning rates); other values are
    categories, in the order first seen."""
    import matplotlib.pyplot as plt

    points = [(r[key], r[metric]) for r in rows if r.get(key) is not None and metric in r]
    if not points:
        have = sorted({k for r in rows for k in r if "/" in k})
        raise LitlabError(
            f"--plot {metric} -k {key}: no run has both (metrics: {', '.join(have) or 'none'})."
        )
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x, _ in points)
    if not numbers:
        names = list(dict.fromkeys(str(x) for x, _ in points))
        points = [(names.index(str(x)), y) for x, y in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(*zip(*points, strict=True), alpha=0.6, label="runs")
    xs = sorted({x for x, _ in points})
    means = [sum(y for x, y in points if x == v) / sum(x == v for x, _ in points) for v in xs]
    ax.plot(xs, means, "-o", color="C1", label="mean")
    if numbers and min(xs) > 0 and max(xs) >= 100 * min(xs):
        ax.set_xscale("log")
    if not numbers:
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(xlabel=key, ylabel=metric, title=f"{metric} against {key}, {len(points)} runs")
    ax.legend()
    fig.tight_layout()
    return fig


RUN_DIR = "<run dir>"  # a run's own directory, in the values that name it: not a difference
ABSENT = "(absent)"


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"lr": 1}}`` -> ``{"model.lr": 1}``; lists are values."""
    if isinstance(node, dict) and node:
        return {k: v for key, sub in node.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.removesuffix("."): node}


def _aspects(m: dict, packages: bool) -> dict[str, dict]:
    """What ``--diff`` compares, by section: config keys (dotted; the data's apart), git, the
    system, and every package's version (``packages``; else ``versions``' few)."""
    config = m.get("config") or {}
    own = (config.get("paths") or {}).get("output_dir")
    flat = {
        k: v.replace(own, RUN_DIR) if own and isinstance(v, str) else v
        for k, v in (_flat(config) if config else {}).items()
    }
    versions, git = m.get("versions") or {}, m.get("git") or {}
    system = ("python", "cuda")
    few = {k: v for k, v in versions.items() if k not in system}  # torch, lightning, litlab
    return {
        "config": {k: v for k, v in flat.items() if not k.startswith("data.")},
        "data": {k: v for k, v in flat.items() if k.startswith("data.")},
        "git": {"commit": git.get("commit"), "dirty": git.get("dirty")},
        "system": {
            **{k: versions.get(k) for k in system},
            "platform": (m.get("host") or {}).get("platform"),
        },
        "package": m["packages"] if packages else few,
    }


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def diff_runs(a: str | Path, b: str | Path) -> list[str]:
    """What differs between two runs, one line each, ``<section> <key>: <A's> -> <B's>``, after
    a line naming each run: config, data, git, system and package (see ``_aspects``)."""
    records = []
    for path in (Path(a), Path(b)):
        m = _manifest(path / FILENAME) if (path / FILENAME).is_file() else None
        if m is None:
            raise LitlabError(f"{path} is not a run dir: it has no readable {FILENAME}.")
        records.append(m)
    lines = [f"A: {a}", f"B: {b}"]
    packages = all(isinstance(m.get("packages"), dict) for m in records)
    if not packages:  # a run from before litlab recorded them
        lines.append("package: a run recorded no package list; comparing litlab's few versions")
    first, second = (_aspects(m, packages) for m in records)
    found = False
    for section, ours in first.items():
        theirs = second[section]
        for key in sorted(ours.keys() | theirs.keys()):
            mine, other = ours.get(key, ABSENT), theirs.get(key, ABSENT)
            if mine != other:
                lines.append(f"{section} {key}: {_show(mine)} -> {_show(other)}")
                found = True
    if not found:
        lines.append("no differences in config, data, git, system or packages")
    return lines
