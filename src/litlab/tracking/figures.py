"""The ``figures`` callback: after testing, the model's pictures go to PNG files and the loggers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from annotated_types import Ge
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from typing_extensions import override


class Figures(Callback):
    """Asks the task for ``figures(datamodule)`` (``LitTask``'s default: none) once testing ends,
    not every epoch (pictures cost time), and saves each as ``<dirpath>/<name>.png``, logged to
    wandb and TensorBoard as ``figures/<name>``. Rank 0 only."""

    def __init__(self, dirpath: str, dpi: Annotated[int, Ge(1)] = 100):
        self.dirpath = Path(dirpath)
        self.dpi = dpi
        self.saved: list[Path] = []

    @override
    @rank_zero_only
    def on_test_end(self, trainer, pl_module) -> None:
        if trainer.datamodule is None:
            return
        from litlab.tracking.plots import render, write_png

        self.dirpath.mkdir(parents=True, exist_ok=True)
        for name, fig in pl_module.figures(trainer.datamodule).items():
            path = self.dirpath / f"{name}.png"
            rgba = render(fig, self.dpi)  # drawn once, for the file and every logger
            write_png(rgba, path)
            self.saved.append(path)
            self._log(trainer, name, rgba, path)

    def _log(self, trainer, name: str, rgba, path: Path) -> None:
        step = trainer.global_step
        for lg in trainer.loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(f"figures/{name}", [str(path)], step=step)
            elif isinstance(lg, TensorBoardLogger):
                rgb = rgba[..., :3]
                lg.experiment.add_image(f"figures/{name}", rgb, step, dataformats="HWC")
