"""Arrays larger than memory: ``x.npy`` and ``y.npy`` memory-mapped (``np.load(mmap_mode="r")``)
and read a sample at a time by DataLoader workers; never loaded whole."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from litlab import LitlabError, first_line
from litlab.config.values import Count
from litlab.data.folder import Fraction
from litlab.data.splits import carve, refuse_second_val
from litlab.data.workers import WorkerDataModule


def open_array(path: Path) -> np.ndarray:
    """A .npy file memory-mapped read-only: only its header is read now."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise LitlabError(f"{path}: no such file.") from None
    except Exception as err:  # ValueError (a bad header, pickled objects), OSError
        raise LitlabError(f"{path}: not a readable .npy array ({first_line(err)}).") from err
    if array.dtype.kind not in "biuf" or array.ndim == 0 or len(array) == 0:
        raise LitlabError(f"{path}: {array.dtype} {array.shape}: give an array of samples.")
    return array


class MappedArrays(Dataset):
    """``(x[j], y[j])`` for ``j`` in ``rows`` of two memory-mapped files. Each process maps
    them itself: a pickled memmap (a worker's copy of the dataset) would carry its data."""

    def __init__(self, x_path: Path, y_path: Path, rows: np.ndarray):
        self.paths, self.rows = (x_path, y_path), rows

    def __len__(self) -> int:
        return len(self.rows)

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return open_array(self.paths[0]), open_array(self.paths[1])

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "arrays"}

    def __getitem__(self, key):
        j = self.rows[key[1] if isinstance(key, tuple) else key]
        x, y = (np.array(a[j]) for a in self.arrays)  # one sample read from disk
        x = torch.from_numpy(x.astype(np.float32) if x.dtype.kind == "f" else x)
        if y.dtype.kind == "f":
            return x, torch.from_numpy(y.astype(np.float32).reshape(-1))  # a target: [1]
        return x, torch.from_numpy(y.astype(np.int64))  # a class id


class ArrayDataModule(WorkerDataModule):
    """Samples in ``root`` = ``data_dir/folder``: ``x.npy`` (inputs, one per row) and ``y.npy``
    (integer class ids, or float targets). Each split comes from ``root/<split>/x.npy`` and
    ``y.npy`` where that folder exists, else from a seeded ``val_fraction``/``test_fraction``
    of the training rows (``root/train/``, or ``root`` itself). Float inputs are read as
    float32, others as stored; ``class_names`` names the class ids for predict and export."""

    def __init__(
        self,
        data_dir: str = "data",
        folder: str = "arrays",
        batch_size: Count = 64,
        val_fraction: Fraction | None = None,
        test_fraction: Fraction | None = None,
        class_names: list[str] | None = None,
        **loading,  # eval_batch_size, seed and the DataLoader's: see WorkerDataModule
    ):
        super().__init__(batch_size, **loading)
        self.data_dir, self.folder, self.class_names = data_dir, folder, class_names
        self.fractions = {"val": val_fraction, "test": test_fraction}

    @property
    def root(self) -> Path:
        return Path(self.data_dir, self.folder).expanduser()  # an absolute folder: itself

    def split(self, folder: Path, rows: np.ndarray | None = None) -> MappedArrays:
        """The rows of ``folder``'s x.npy and y.npy (all of them by default)."""
        x_path, y_path = folder / "x.npy", folder / "y.npy"
        x, y = open_array(x_path), open_array(y_path)
        if len(x) != len(y):
            raise LitlabError(f"{x_path}: {len(x)} samples, but {y_path} has {len(y)}.")
        return MappedArrays(x_path, y_path, np.arange(len(x)) if rows is None else rows)

    @cached_property
    def pool(self) -> Path:
        """The folder of the training arrays: ``train/``, or ``root`` itself."""
        if not self.root.is_dir():
            raise LitlabError(f"{self.root} (data.data_dir/data.folder): no such folder.")
        train = self.root / "train"
        return train if train.is_dir() else self.root

    def build(self) -> dict[str, MappedArrays]:
        splits, carved = {}, {}
        for split, fraction in self.fractions.items():
            has_folder = (self.root / split).is_dir() and self.pool != self.root
            if split == "val" and self.folds:
                refuse_second_val(self.folds, f"{self.root / split}/" if has_folder else None)
                refuse_second_val(
                    self.folds, None if fraction is None else f"data.val_fraction={fraction}"
                )
                continue
            if has_folder == (fraction is not None):
                raise LitlabError(
                    f"data.{split}_fraction={fraction} and {self.root / split}/ "
                    f"{'present' if has_folder else 'absent'}: give one of them."
                )
            if has_folder:
                splits[split] = self.split(self.root / split)
            else:
                carved[split] = fraction
        y = open_array(self.pool / "y.npy")
        labels = np.asarray(y) if y.dtype.kind in "iub" else None  # class ids: stratified folds
        parts = carve(len(y), self.seed, carved, "training samples", self.folds, labels)
        return {split: self.split(self.pool, rows) for split, rows in parts.items()} | splits

    def describe_input(self) -> dict:
        """One sample as stored (see ``LitData.describe_input``): from x.npy's header."""
        x = open_array(self.pool / "x.npy")
        dtype = "float32" if x.dtype.kind == "f" else str(x.dtype)
        return {
            "shape": list(x.shape[1:]),
            "dtype": dtype,
            "normalisation": None,
            **({"class_names": list(self.class_names)} if self.class_names else {}),
        }
