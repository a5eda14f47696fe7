"""The samples litlab-predict runs a model on: a run's test split or the user's own files.

Every reader returns the samples in the form the datamodule stores them (its
``describe_input()``: MNIST as uint8 28x28 images, the synthetic tasks as float32 rows), so the
model sees them after the datamodule's own preprocessing, exactly as in training.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from litlab import LitlabError, first_line

if TYPE_CHECKING:
    import lightning as L

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# MNIST's own preparation: the digit fits a 20x20 box, its centre of mass at the image centre.
DIGIT_BOX, SIDE = 20, 28


@dataclass
class Inputs:
    """Samples to predict, with an id each (and their true labels for a run's own split)."""

    x: torch.Tensor  # (n, *shape) as the datamodule stores samples
    ids: list  # one per sample: file names, or row numbers
    labels: torch.Tensor | None = None  # the true labels/targets, for a run's own split


def input_spec(datamodule: L.LightningDataModule) -> dict:
    """What one sample of the run's data looks like (``describe_input()``)."""
    describe = getattr(datamodule, "describe_input", None)
    if describe is None:
        raise LitlabError(
            f"{type(datamodule).__name__} does not say what one input looks like: give it a "
            "describe_input() method (see litlab.data.MNISTDataModule)."
        )
    return describe()


def test_split(datamodule: L.LightningDataModule) -> Inputs:
    """The run's test split, read through the datamodule's own loader."""
    datamodule.prepare_data()
    datamodule.setup("test")
    xs, ys = zip(*((x.cpu(), y.cpu()) for x, y in datamodule.test_dataloader()), strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    return Inputs(x, list(range(len(x))), y)


def read_input(path: str | Path, spec: dict) -> Inputs:
    """The user's data at ``path``: a folder of images or an IDX file (image models), a CSV of
    rows (the others), or a ``.npy`` array (any)."""
    path = Path(path).expanduser()
    image = bool(spec.get("image"))
    kinds = (
        "PNG/JPEG images (a folder or one), an IDX file or a .npy array"
        if image
        else "a .csv or .npy file"
    )
    if not path.exists():
        raise LitlabError(f"input={path}: no such file or folder.")
    suffix = path.suffix.lower()
    if path.is_dir() and image:
        x, ids = read_image_folder(path)
        return Inputs(x, ids)
    if image and suffix in IMAGE_SUFFIXES:
        return Inputs(torch.from_numpy(mnist_like(path))[None], [path.name])
    if suffix == ".npy":
        array = _read_npy(path)
    elif suffix == ".csv" and not image:
        array = _read_csv(path)
    elif image and not path.is_dir() and suffix != ".csv":
        array = _read_idx(path)
    else:
        raise LitlabError(f"input={path}: this model reads {kinds}.")
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
    if array.min() < 0 or array.max() > 255:
        raise LitlabError(f"input={path}: pixel values must lie in 0..255 as in MNIST.")
    if array.dtype.kind == "f" and array.max() <= 1:
        raise LitlabError(
            f"input={path}: pixel values all within 0..1; MNIST's are 0..255 (multiply by 255)."
        )
    return np.rint(array).astype(np.uint8)


def read_image_folder(folder: Path) -> tuple[torch.Tensor, list[str]]:
    """Every PNG/JPEG in ``folder``, prepared as MNIST digits, and their file names."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LitlabError(f"input={folder}: no PNG or JPEG images in this folder.")
    images = [mnist_like(p) for p in files]
    return torch.from_numpy(np.stack(images)), [p.name for p in files]


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
