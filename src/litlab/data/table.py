"""A table of samples, one row each: CSV (Python's csv module) or Parquet (pyarrow, the
``[tables]`` extra); feature and target columns by name, read by DataLoader workers."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from litlab import LitlabError, first_line
from litlab.config.extras import require
from litlab.config.values import Count
from litlab.data.folder import Fraction
from litlab.data.splits import carve, refuse_second_val
from litlab.data.workers import WorkerDataModule


def read_columns(path: Path, names: list[str]) -> dict[str, list]:
    """The named columns of a .csv or .parquet file, as lists of their cells. Rows are
    counted from 1 after the header, in the messages too."""
    if not path.is_file():
        raise LitlabError(f"{path}: no such file.")
    if path.suffix.lower() == ".parquet":
        require("data.file=*.parquet")
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as err:  # ArrowInvalid and OSError for a file that is not Parquet
            raise LitlabError(f"{path}: not a readable Parquet file ({first_line(err)}).") from err
        header, rows = table.column_names, table.num_rows
        columns = {n: table.column(n).to_pylist() for n in names if n in header}
    else:
        with open(path, newline="") as file:
            header, *body = [row for row in csv.reader(file) if row] or [[]]  # blank lines: none
        rows = len(body)
        for number, row in enumerate(body, 1):
            if len(row) != len(header):
                raise LitlabError(
                    f"{path}: row {number} holds {len(row)} cells, the header {len(header)}."
                )
        columns = {n: [row[header.index(n)] for row in body] for n in names if n in header}
    if not header or not rows:
        raise LitlabError(f"{path}: an empty table (it needs a header row and samples).")
    for name in names:
        if name not in header:
            raise LitlabError(f"{path}: no column {name!r} (it has {', '.join(header)}).")
    return columns


def numbers(cells: list, path: Path, name: str) -> np.ndarray:
    """A column as float32, or one line naming the first cell that is not a finite number."""
    out = np.empty(len(cells), np.float32)
    for row, cell in enumerate(cells):
        try:
            out[row] = value = float(cell)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise LitlabError(f"{path}: row {row + 1}, column {name!r}: {cell!r} is not a number.")
    return out


class Rows(Dataset):
    """``(features, target)`` rows of tensors in memory; the training split's keys are
    ``(epoch, index)`` (``TrainingOrder``), the others' plain indices."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key):
        i = key[1] if isinstance(key, tuple) else key
        return self.x[i], self.y[i]


class TableDataModule(WorkerDataModule):
    """Rows of ``data_dir/file`` (.csv with a header row, or .parquet): the ``features``
    columns as float32, the ``target`` column as class ids (``task: classification``; the
    class names are the training values, sorted) or as a float32 ``[1]`` (``regression``).
    ``file`` is one file, or ``{train: ..., val: ..., test: ...}``; a split without a file
    of its own is a seeded ``val_fraction``/``test_fraction`` of the training file.
    ``standardize``: each feature's mean and std, fitted on the training split only, scale
    every batch on the device (so litlab-predict and litlab-export apply them too)."""

    def __init__(
        self,
        features: list[str],
        target: str,
        task: Literal["classification", "regression"] = "classification",
        data_dir: str = "data",
        file: str | Mapping[str, str] = "table.csv",
        val_fraction: Fraction | None = None,
        test_fraction: Fraction | None = None,
        standardize: bool = True,
        batch_size: Count = 64,
        **loading,  # eval_batch_size, seed and the DataLoader's: see WorkerDataModule
    ):
        super().__init__(batch_size, **loading)
        if not features:
            raise LitlabError("data.features: name at least one feature column.")
        self.features, self.target, self.task = list(features), target, task
        self.data_dir, self.standardize = data_dir, standardize
        self.files = {"val": None, "test": None, **(file if isinstance(file, Mapping) else {})}
        self.files.setdefault("train", file)
        if not isinstance(self.files["train"], str):
            raise LitlabError(f"data.file={file}: name the training file (train: ...).")
        self.fractions = {"val": val_fraction, "test": test_fraction}

    def path(self, name: str) -> Path:
        return Path(self.data_dir, name).expanduser()  # an absolute file: itself

    def read_table(self, path: Path) -> np.ndarray:
        """The feature columns of a table file, by name: float32 ``[rows, features]``."""
        columns = read_columns(path, self.features)
        return np.stack([numbers(columns[n], path, n) for n in self.features], 1)

    @cached_property
    def class_names(self) -> list[str] | None:
        if self.task != "classification":
            return None
        values = {
            str(v) for v in read_columns(self.path(self.files["train"]), [self.target])[self.target]
        }
        try:
            return sorted(values, key=float)  # 2 before 10
        except ValueError:
            return sorted(values)

    def read_split(self, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.read_table(path))
        cells = read_columns(path, [self.target])[self.target]
        if self.task == "regression":
            return x, torch.from_numpy(numbers(cells, path, self.target))[:, None]
        names = self.class_names
        for row, cell in enumerate(cells):
            if str(cell) not in names:
                raise LitlabError(
                    f"{path}: row {row + 1}, column {self.target!r}: class {cell!r} is not "
                    f"among the training file's ({', '.join(names)})."
                )
        return x, torch.tensor([names.index(str(c)) for c in cells])

    def build(self) -> dict[str, Rows]:
        train = self.path(self.files["train"])
        splits, carved = {}, {}
        for split, fraction in self.fractions.items():
            name = self.files[split]
            if split == "val" and self.folds:
                refuse_second_val(self.folds, name and f"data.file.val={name}")
                refuse_second_val(
                    self.folds, None if fraction is None else f"data.val_fraction={fraction}"
                )
            elif (name is None) == (fraction is None):
                raise LitlabError(
                    f"data.file.{split}={name} and data.{split}_fraction={fraction}: "
                    "give one of them."
                )
            elif name is not None:
                splits[split] = Rows(*self.read_split(self.path(name)))
            else:
                carved[split] = fraction
        x, y = self.read_split(train)
        labels = y.numpy() if self.task == "classification" else None
        parts = carve(len(x), self.seed, carved, f"rows of {train}", self.folds, labels)
        return {split: Rows(x[rows], y[rows]) for split, rows in parts.items()} | splits

    @cached_property
    def stats(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each feature's training mean and std (1 where a feature is constant)."""
        if not self.standardize:
            return None
        self.setup()
        x = self.datasets["train"].x.double()
        std = x.std(0, correction=0)
        return x.mean(0).float(), torch.where(std > 0, std, 1).float()

    def state_dict(self) -> dict:
        """The scaling, saved in each checkpoint: a run brought back (eval, predict, export,
        ``litlab.load``) scales as it trained, whatever its training file holds by then."""
        stats = self.stats
        return {"mean": stats[0].tolist(), "std": stats[1].tolist()} if stats else {}

    def load_state_dict(self, state: dict) -> None:
        if state and self.standardize:
            self.__dict__["stats"] = (torch.tensor(state["mean"]), torch.tensor(state["std"]))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        x, y = batch
        if self.stats is None:
            return x, y
        mean, std = self.stats
        return (x - mean.to(x.device)) / std.to(x.device), y

    def describe_input(self) -> dict:
        """One row's features as stored (see ``LitData.describe_input``)."""
        stats = self.stats  # fitted now, from the training file, not while an export traces
        return {
            "shape": [len(self.features)],
            "dtype": "float32",
            "names": list(self.features),
            "normalisation": stats and {"mean": stats[0].tolist(), "std": stats[1].tolist()},
            **({"class_names": self.class_names} if self.class_names else {}),
        }
