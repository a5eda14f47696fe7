"""What a finished run prints: its final metrics and where its files are."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table


@rank_zero_only
def print_summary(cfg: DictConfig, metrics: dict[str, float], trainer) -> None:
    table = Table(title=f"litlab · {cfg.name} · seed {cfg.seed}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in sorted(metrics):
        if not key.endswith(("_step", "_epoch")):
            table.add_row(key, f"{metrics[key]:.6g}")
    console = Console()
    console.print(table)
    console.print(f"run dir: {cfg.paths.output_dir}")
    best = getattr(trainer.checkpoint_callback, "best_model_path", "")
    if best:
        console.print(f"best checkpoint: {best}")
