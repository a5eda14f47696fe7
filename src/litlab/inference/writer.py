"""What ``trainer.predict`` runs on and writes with in litlab-predict: the inputs as a datamodule,
and a ``BasePredictionWriter`` that gathers every DDP rank's rows into one file."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from typing_extensions import override

from litlab.data.loader import TensorLoader
from litlab.files import write_atomic, write_text


class PredictData(L.LightningDataModule):
    """Batches of ``(x, row index)``; each DDP rank takes its share of the rows. The run's own
    datamodule prepares ``x`` on the device, as in training (MNIST: normalised, one channel)."""

    def __init__(self, x, task: L.LightningDataModule, batch_size: int):
        super().__init__()
        self.x, self.task, self.batch_size = x, task, batch_size

    @override
    def predict_dataloader(self):
        trainer = self.trainer
        return TensorLoader(
            self.x,
            torch.arange(len(self.x)),
            self.batch_size,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )

    @override
    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return self.task.on_after_batch_transfer(batch, dataloader_idx)


class PredictionWriter(BasePredictionWriter):
    """Keeps each batch's rows on the CPU; at the end each DDP rank saves its part next to
    ``output`` and rank 0 merges them by row index into the one file."""

    def __init__(self, output: Path, ids: list, labels=None, label_name: str = "label"):
        super().__init__(write_interval="batch")
        self.output, self.ids, self.labels, self.label_name = output, ids, labels, label_name
        self.parts: list[dict] = []

    @override
    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        # On the CPU at once: device memory stays free, and numpy takes CPU tensors only.
        row = {k: v.detach().cpu() for k, v in prediction.items()}
        self.parts.append({"index": batch[1].detach().cpu(), **row})

    @override
    def on_predict_epoch_end(self, trainer, pl_module) -> None:
        mine = _concat(self.parts)
        self.parts = []
        rows = _gather(trainer, mine, self.output) if trainer.world_size > 1 else mine
        if trainer.is_global_zero:
            WRITERS[self.output.suffix.lower()](self.output, self.table(rows))

    def table(self, rows: dict) -> dict[str, list]:
        """The columns of the file, rows in input order: id, the true label if known, the rest."""
        index = rows.pop("index")
        order = index.argsort()
        index = index[order]
        columns: dict[str, list] = {"id": [self.ids[i] for i in index.tolist()]}
        if self.labels is not None:
            labels = self.labels[index].reshape(len(index))  # regressions store (n, 1)
            columns[self.label_name] = (
                labels.long() if self.label_name == "label" else labels
            ).tolist()
        columns.update({k: v[order].tolist() for k, v in rows.items()})
        return columns


def _concat(parts: list[dict]) -> dict:
    if not parts:
        return {"index": torch.zeros(0, dtype=torch.long)}
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _gather(trainer, mine: dict, output: Path) -> dict | None:
    """Every rank's rows on rank 0 (None elsewhere), through files: no collective of objects
    that some backends (NCCL) cannot send. The folder must be shared by the ranks."""
    parts = output.parent / f".{output.name}.parts"
    parts.mkdir(parents=True, exist_ok=True)
    torch.save(mine, parts / f"rank{trainer.global_rank}.pt")
    trainer.strategy.barrier("litlab-predict-parts")
    if not trainer.is_global_zero:
        return None
    every = [
        torch.load(parts / f"rank{r}.pt", weights_only=True) for r in range(trainer.world_size)
    ]
    shutil.rmtree(parts, ignore_errors=True)
    return _concat([p for p in every if len(p["index"])])


def write_csv(path: Path, columns: dict[str, list]) -> None:
    """``columns`` as a CSV file, one row per prediction, written atomically."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(columns)
    out.writerows(zip(*columns.values(), strict=True))
    write_text(path, text.getvalue())


def write_npy(path: Path, columns: dict[str, list]) -> None:
    """A structured array: one named field per column (``np.load(path)["prob_3"]``)."""
    import numpy as np

    table = np.rec.fromarrays([np.asarray(v) for v in columns.values()], names=list(columns))
    write_atomic(path, lambda f: np.save(f, table, allow_pickle=False))


WRITERS = {".csv": write_csv, ".npy": write_npy}
