"""What a finished run prints: its final metrics and where its files are."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


@rank_zero_only
def print_summary(title: str, metrics: dict[str, float], paths: dict[str, str | None]) -> None:
    """The metrics as a table, then ``label: path`` lines for what has a path."""
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        if not key.endswith(("_step", "_epoch")):
            table.add_row(key, f"{metrics[key]:.6g}")
    Console().print(table)
    for label, path in paths.items():
        if path:
            # Plain print: rich wraps long lines at 80 columns when piped, which breaks paths.
            print(f"{label}: {path}", flush=True)
