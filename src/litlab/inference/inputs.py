"""The samples litlab-predict runs a model on: a run's test split or the user's own files.

Every reader returns the samples in the form the datamodule stores them (its
``describe_input()``: MNIST as uint8 28x28 images, the synthetic tasks as float32 rows; image
files through its ``read_image``), so the model sees them after the datamodule's own
preprocessing, exactly as in training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from litlab import LitlabError, first_line
from litlab.data.base import LitData

if TYPE_CHECKING:
    import lightning as L

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Inputs:
    """Samples to predict, with an id each (and their true labels for a run's own split)."""

    x: torch.Tensor  # (n, *shape) as the datamodule stores samples
    ids: list  # one per sample: file names, or row numbers
    labels: torch.Tensor | None = None  # the true labels/targets, for a run's own split


def input_spec(datamodule: L.LightningDataModule) -> dict:
    """What one sample of the run's data looks like (``LitData.describe_input``)."""
    if not isinstance(datamodule, LitData):
        raise LitlabError(
            f"{type(datamodule).__name__} does not say what one input looks like: make it a "
            "litlab.data.base.LitData with a describe_input() method."
        )
    return datamodule.describe_input()


def test_split(datamodule: L.LightningDataModule) -> Inputs:
    """The run's test split, read through the datamodule's own loader."""
    datamodule.prepare_data()
    datamodule.setup("test")
    xs, ys = zip(*((x.cpu(), y.cpu()) for x, y in datamodule.test_dataloader()), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    return Inputs(x, list(range(len(x))), y)


def read_input(path: str | Path, datamodule: LitData) -> Inputs:
    """The user's data at ``path`` as ``datamodule`` stores samples: images (a folder or one)
    or an IDX file for image models, a CSV of rows for the others (a table module's feature
    columns by name, from .csv or .parquet), a ``.npy`` array for any."""
    path = Path(path).expanduser()
    spec = input_spec(datamodule)
    image = bool(spec.get("image"))
    if not path.exists():
        raise LitlabError(f"input={path}: no such file or folder.")
    suffix = path.suffix.lower()
    if image and (path.is_dir() or suffix in IMAGE_SUFFIXES):
        files = [path]
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise LitlabError(f"input={path}: no PNG or JPEG images in this folder.")
        x = np.stack([datamodule.read_image(p) for p in files])
        return Inputs(torch.from_numpy(x), [p.name for p in files])
    table_reader = getattr(datamodule, "read_table", None)  # its feature columns, by name
    if table_reader and suffix in (".csv", ".parquet"):
        array = table_reader(path)
    elif suffix == ".npy":
        array = _read_npy(path)
    elif suffix == ".csv" and not image:
        array = _read_csv(path)
    elif image and suffix != ".csv":  # folders and image files were read above
        array = _read_idx(path)
    else:
        kinds = "PNG/JPEG images (a folder or one), an IDX file or a .npy array"
        raise LitlabError(
            f"input={path}: this model reads {kinds if image else 'a .csv or .npy file'}."
        )
    x = to_spec(array, spec, path)
    return Inputs(x, list(range(len(x))))


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # ValueError (pickled objects, bad header), OSError, EOFError
        raise LitlabError(f"input={path}: not a readable .npy array ({first_line(err)}).") from err


def _read_csv(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on an empty file; that is checked below
        for header_rows in (0, 1):
            try:
                return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=header_rows)
            except ValueError as err:
                problem = err
    raise LitlabError(f"input={path}: not a CSV of numbers ({first_line(problem)}).")


def _read_idx(path: Path) -> np.ndarray:
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

    try:
        return read_sn3_pascalvincent_tensor(str(path)).numpy()
    except Exception as err:  # torchvision checks the header with asserts; bad data fails anywhere
        raise LitlabError(
            f"input={path}: not an IDX file such as MNIST's t10k-images-idx3-ubyte "
            f"({first_line(err)})."
        ) from err


def to_spec(array: np.ndarray, spec: dict, path: Path) -> torch.Tensor:
    """``array`` as samples of ``spec``'s shape and dtype, or a one-line reason why not."""
    shape = tuple(spec["shape"])
    if array.size == 0:
        raise LitlabError(f"input={path}: holds no samples.")
    if array.dtype.kind not in "biuf":
        raise LitlabError(f"input={path}: holds {array.dtype} values, not numbers.")
    if array.ndim == 1 and shape == (1,):
        array = array[:, None]  # a plain list of x values
    if spec.get("image") and array.ndim == len(shape) + 2 and array.shape[1] == 1:
        array = array[:, 0]  # (n, 1, H, W): one channel
    if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape:
        what = "x".join(map(str, shape)) + (" images" if spec.get("image") else " values each")
        got = "x".join(map(str, array.shape[1:])) or "single values"
        raise LitlabError(
            f"input={path}: samples of shape {got}, but this model takes {what}"
            + (f" ({', '.join(spec['names'])})" if spec.get("names") else "")
            + "."
        )
    if not np.isfinite(array).all():
        row = int(np.argwhere(~np.isfinite(array.reshape(len(array), -1)))[0][0])
        raise LitlabError(f"input={path}: sample {row} holds NaN or infinite values.")
    if spec["dtype"] == "uint8":
        array = _as_pixels(array, path)
    return torch.from_numpy(np.ascontiguousarray(array)).to(getattr(torch, spec["dtype"]))


def _as_pixels(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` as uint8 pixels 0..255. An array whose values all lie within 0..1 (booleans, or
    integers 0 and 1: a binarized image; floats: scaled to 0..1) would be read as nearly black
    images, each prediction the same: refused, with the fix."""
    if array.min() < 0 or array.max() > 255:
        raise LitlabError(f"input={path}: pixel values must lie in 0..255.")
    if array.max() <= 1:
        what = {"b": "True/False values", "f": "values all within 0..1"}.get(
            array.dtype.kind, "values all 0 or 1"
        )
        raise LitlabError(
            f"input={path}: holds {what} (binarized or scaled images?), but this model reads "
            "pixel values 0..255 (a digit is up to 255): multiply by 255, e.g. "
            "np.save(path, (x * 255).astype(np.uint8))."
        )
    return np.rint(array).astype(np.uint8)
