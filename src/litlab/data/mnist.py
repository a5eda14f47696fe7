"""MNIST as uint8 tensors in memory; parsing and downloading are torchvision's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch

from litlab import LitlabError, first_line
from litlab.config.values import Count
from litlab.data.base import Split
from litlab.data.image import ImageDataModule

# MNIST's training-set pixel mean and std (on [0, 1]); configs/data/mnist.yaml says so too.
MEAN, STD = 0.1307, 0.3081
NORMALIZE = MappingProxyType({"mean": (MEAN,), "std": (STD,)})  # read-only: a safe default
# MNIST's own preparation: the digit fits a 20x20 box, its centre of mass at the image centre.
DIGIT_BOX, SIDE = 20, 28
RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


class MNISTDataModule(ImageDataModule):
    """Train/val: a seeded split of the 60k training images (with ``num_folds``, a fold of all
    60k instead of ``val_size``). Test: the official 10k, never seen.

    Stored as uint8 ``[N, 28, 28]``; the model gets float ``[N, 1, 28, 28]`` normalised with
    ``normalize`` (``ImageDataModule``).
    """

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: Count = 128,
        eval_batch_size: Count = 1000,
        val_size: Count = 5000,
        download: bool = True,
        seed: int = 0,
        on_device: bool = True,
        normalize: Mapping[str, float | Sequence[float]] | None = NORMALIZE,
        **folds,  # fold, num_folds: cross-validation, see TensorDataModule
    ):
        super().__init__(batch_size, eval_batch_size, seed, on_device, normalize, **folds)
        self.data_dir = Path(data_dir).expanduser()
        self.val_size = val_size
        self.download = download

    def _read(self, train: bool, download: bool) -> Split:
        from torchvision.datasets import MNIST  # torchvision costs ~1 s to import: only when needed

        ds = MNIST(str(self.data_dir), train=train, download=download)
        return ds.data, ds.targets

    def prepare_data(self) -> None:
        # Only a missing file triggers torchvision's download: a second parse would cost a second.
        if self.download and not all((self.raw_dir / f).is_file() for f in RAW_FILES):
            self._read_all(download=True)

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def _read_all(self, download: bool) -> tuple[Split, Split]:
        try:
            return self._read(True, download), self._read(False, download)
        except Exception as err:  # torchvision: RuntimeError, OSError, URLError, ValueError...
            found = sorted(p.name for p in self.raw_dir.glob("*")) if self.raw_dir.is_dir() else []
            raise LitlabError(
                f"MNIST could not be read from {self.raw_dir} "
                f"({first_line(err)}). "
                f"Found: {found or 'nothing'}. Put the four raw files {', '.join(RAW_FILES)} "
                "there (or let the run download them, with internet access), or point "
                "paths.data_dir (environment variable LITLAB_DATA_DIR) at a directory "
                "that holds MNIST/raw/."
            ) from err

    def build(self) -> dict[str, Split]:
        (x, y), test = self._read_all(download=False)
        if self.folds:  # TensorDataModule.setup holds out the fold
            return {"train": (x, y), "test": test}
        if len(x) <= self.val_size:
            raise LitlabError(
                f"data.val_size={self.val_size} leaves no training images: use fewer than {len(x)}."
            )
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.seed))
        train, val = order[self.val_size :], order[: self.val_size]
        return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": test}

    def read_image(self, path: Path) -> np.ndarray:
        return mnist_like(path)  # any image, prepared the way MNIST prepared its digits

    def describe_input(self) -> dict:
        """One image as stored (see ``LitData.describe_input``)."""
        return {
            "shape": [28, 28],
            "dtype": "uint8",
            "image": "white digit on black, 0-255, as MNIST",
            "normalisation": self.normalisation("uint8"),
            "class_names": [str(i) for i in range(10)],
        }


def mnist_like(path: str | Path) -> np.ndarray:
    """An image of any size and colours as MNIST prepared its digits: 28x28 uint8, a white
    digit on black, fitted into a 20x20 box, its centre of mass at the centre."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            gray = _on_white(im).convert("L")
    except Exception as err:  # PIL: UnidentifiedImageError, OSError for truncated files, ...
        raise LitlabError(f"{path}: not a readable image ({first_line(err)}).") from err
    pixels = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    if np.median(border) > 127:
        pixels, border = 255 - pixels, 255 - border  # dark ink on a light page
    ink = np.clip(pixels - np.median(border), 0, None)  # the background to black
    if ink.max() < 32:
        raise LitlabError(f"{path}: no digit in it (the image is blank).")
    ink *= 255 / ink.max()
    rows, cols = np.nonzero(ink > 0.1 * 255)
    digit = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return _centred(_fit_box(digit))


def _on_white(im):
    """Transparent parts become white paper (most drawings are dark ink on transparency)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
        page = Image.new("RGBA", im.size, "white")
        page.alpha_composite(im.convert("RGBA"))
        return page
    return im


def _fit_box(digit: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = digit.shape
    scale = DIGIT_BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = Image.fromarray(digit.astype(np.float32))  # mode "F": 32-bit float pixels
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS)).clip(0, 255)


def _centred(digit: np.ndarray) -> np.ndarray:
    h, w = digit.shape
    total = digit.sum()
    com_r = (digit.sum(1) * np.arange(h)).sum() / total
    com_c = (digit.sum(0) * np.arange(w)).sum() / total
    centre = (SIDE - 1) / 2
    top = int(np.clip(round(centre - com_r), 0, SIDE - h))
    left = int(np.clip(round(centre - com_c), 0, SIDE - w))
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    canvas[top : top + h, left : left + w] = digit
    return np.rint(canvas).astype(np.uint8)
