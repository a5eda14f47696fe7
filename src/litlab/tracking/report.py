"""What a finished run prints: its final metrics and where its files are."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table


def final_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The epoch-level metrics a run ends with, without Lightning's ``*_step``/``*_epoch``
    copies: what the summary, run.json's readers and the sweep tables show."""
    return {k: v for k, v in metrics.items() if not k.endswith(("_step", "_epoch"))}


@rank_zero_only
def print_summary(title: str, metrics: dict[str, float], paths: dict[str, str | None]) -> None:
    """The metrics as a table, then ``label: path`` lines for what has a path."""
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(final_metrics(metrics).items()):
        table.add_row(key, f"{value:.6g}")
    Console().print(table)
    for label, path in paths.items():
        if path:
            # Plain print: rich wraps long lines at 80 columns when piped, which breaks paths.
            print(f"{label}: {path}", flush=True)
