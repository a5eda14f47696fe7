"""Images in class folders on disk, ``<split>/<class>/*.png|jpg`` or one folder of
class folders split by seeded fractions, read by DataLoader workers with torchvision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from annotated_types import Gt, Lt
from torch.utils.data import Dataset

from litlab import LitlabError, first_line
from litlab.config.values import Count
from litlab.data.image import ImageInput
from litlab.data.splits import carve, refuse_second_val
from litlab.data.workers import WorkerDataModule

SUFFIXES = (".png", ".jpg", ".jpeg")
Fraction = Annotated[float, Gt(0), Lt(1)]


class BadImage(LitlabError):
    """An image that cannot be used, by its file. A DataLoader worker's error reaches the main
    process rebuilt from a message that adds a traceback ("Caught BadImage in DataLoader worker
    ... BadImage: <the message>"): keep the message alone, so it stays one line."""

    def __init__(self, message: str):
        super().__init__(message.strip().splitlines()[-1].split("BadImage: ", 1)[-1])


def read(path: Path, channels: int, size: tuple[int, int] | None) -> torch.Tensor:
    """One image file as uint8 ``[channels, H, W]``, resized to ``size`` (antialiased) if given."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import resize

    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        image = decode_image(str(path), mode=mode)
    except Exception as err:  # RuntimeError from the decoders, OSError for the file
        raise BadImage(f"{path}: not a readable image ({first_line(err)}).") from err
    return resize(image, list(size), antialias=True) if size else image


class ImageFiles(Dataset):
    """``(image, class index)`` samples; ``augment`` (training only) is seeded by the
    ``(epoch, index)`` keys ``TrainingOrder`` gives, so it is the same in any worker."""

    def __init__(self, files, labels, channels, resize, shape, augment=None, seed: int = 0):
        self.files, self.labels = files, labels
        self.channels, self.resize, self.shape = channels, resize, shape
        self.augment, self.seed = augment, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key):
        epoch, i = key if isinstance(key, tuple) else (None, key)
        image = read(self.files[i], self.channels, self.resize)
        if tuple(image.shape[1:]) != self.shape:
            raise BadImage(
                f"{self.files[i]}: {image.shape[1]}x{image.shape[2]} pixels, but the first "
                f"training image is {self.shape[0]}x{self.shape[1]}: set data.image_size to "
                "resize them all."
            )
        if self.augment is not None and epoch is not None:
            with torch.random.fork_rng(devices=[]):  # the main process's draws stay its own
                torch.manual_seed((self.seed * 1_000_003 + epoch) * 1_000_003 + i)
                image = self.augment(image)
        return image, self.labels[i]


def class_folders(folder: Path) -> dict[str, list[Path]]:
    """``{class name: its image files}``, sorted; an empty class folder is one line."""
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        classes[sub.name] = sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES)
        if not classes[sub.name]:
            raise LitlabError(f"{sub}: a class folder with no PNG or JPEG images.")
    if not classes:
        raise LitlabError(f"{folder}: no class folders (<class>/*.png or *.jpg) in it.")
    return classes


class ImageFolderDataModule(ImageInput, WorkerDataModule):
    """Class folders of images in ``root`` = ``data_dir/folder`` (``data_dir`` is where every
    run's data lives, what ``data_dir=`` moves on eval and predict). Each split comes from
    ``root/<split>/`` where that folder exists, else from a seeded ``val_fraction`` or
    ``test_fraction`` of the training images (``root/train/``, or ``root`` itself when it has
    no ``train/``); the class names are the training folder's.

    Images are read as ``channels`` (1: grey, 3: RGB), resized to ``image_size`` (one side or
    [height, width]; null: all must have the first image's size), stored uint8 ``[C, H, W]``
    and normalised on the device (``ImageInput``). ``augment``: a list of ``transforms.v2``
    transforms applied to training samples only, in the workers."""

    def __init__(
        self,
        data_dir: str = "data",
        folder: str = "images",
        batch_size: Count = 64,
        val_fraction: Fraction | None = None,
        test_fraction: Fraction | None = None,
        channels: Literal[1, 3] = 3,
        image_size: Count | tuple[Count, Count] | None = None,
        normalize: Mapping[str, float | Sequence[float]] | None = None,
        augment: Sequence | None = None,
        **loading,  # eval_batch_size, seed and the DataLoader's: see WorkerDataModule
    ):
        super().__init__(batch_size, **loading)
        self.set_normalize(normalize)
        self.data_dir, self.folder = data_dir, folder
        self.fractions = {"val": val_fraction, "test": test_fraction}
        self.channels = channels
        self.resize = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.resize = tuple(self.resize) if self.resize else None
        self.augment = augment

    @property
    def root(self) -> Path:
        return Path(self.data_dir, self.folder).expanduser()  # an absolute folder: itself

    @property
    def pool(self) -> Path:
        """The folder of the training images: ``train/``, or ``root`` itself."""
        if not self.root.is_dir():
            raise LitlabError(f"{self.root} (data.data_dir/data.folder): no such folder.")
        train = self.root / "train"
        return train if train.is_dir() else self.root

    @cached_property
    def classes(self) -> dict[str, list[Path]]:
        return class_folders(self.pool)

    @cached_property
    def shape(self) -> tuple[int, int]:
        """Height and width of every stored image: ``image_size``, else the first image's."""
        return self.resize or tuple(read(self.files("train")[0][0], self.channels, None).shape[1:])

    def files(self, split: str) -> tuple[list[Path], list[int]]:
        """A split's files and labels as found in its folder (all of ``pool`` for train)."""
        folder = self.pool if split == "train" else self.root / split
        names = list(self.classes)
        found = self.classes if split == "train" else class_folders(folder)
        files, labels = [], []
        for name, paths in found.items():
            if name not in names:
                raise LitlabError(f"{folder / name}: a class the training folder lacks.")
            files += paths
            labels += [names.index(name)] * len(paths)
        return files, labels

    def build(self) -> dict[str, ImageFiles]:
        files, labels = self.files("train")
        splits, carved = {}, {}
        for split, fraction in self.fractions.items():
            has_folder = (self.root / split).is_dir() and self.pool != self.root
            if split == "val" and self.folds:
                refuse_second_val(self.folds, f"{self.root / split}/" if has_folder else None)
                refuse_second_val(
                    self.folds, None if fraction is None else f"data.val_fraction={fraction}"
                )
            elif has_folder and fraction is not None:
                raise LitlabError(
                    f"data.{split}_fraction={fraction}, but {self.root / split} holds the "
                    f"{split} split: set one of them, not both."
                )
            elif has_folder:
                splits[split] = self.files(split)
            elif fraction is None:
                raise LitlabError(
                    f"{self.root} has no {split}/ folder: give data.{split}_fraction."
                )
            else:
                carved[split] = fraction
        parts = carve(len(files), self.seed, carved, "training images", self.folds, labels)
        taken = {s: ([files[i] for i in ix], [labels[i] for i in ix]) for s, ix in parts.items()}
        splits = taken | splits
        shape = self.shape
        return {
            split: ImageFiles(
                paths,
                torch.tensor(labels),
                self.channels,
                self.resize,
                shape,
                self._augmentation() if split == "train" else None,
                self.seed,
            )
            for split, (paths, labels) in splits.items()
        }

    def _augmentation(self):
        if not self.augment:
            return None
        from torchvision.transforms import v2

        return v2.Compose(list(self.augment))

    def read_image(self, path: Path) -> np.ndarray:
        image = read(path, self.channels, self.resize)
        if tuple(image.shape[1:]) != self.shape:
            raise LitlabError(
                f"{path}: {image.shape[1]}x{image.shape[2]} pixels, but this model takes "
                f"{self.shape[0]}x{self.shape[1]} images."
            )
        return image.numpy()

    def describe_input(self) -> dict:
        """One image as stored (see ``LitData.describe_input``)."""
        h, w = self.shape
        colour = "grey" if self.channels == 1 else "RGB"
        return {
            "shape": [self.channels, h, w],
            "dtype": "uint8",
            "image": f"{colour}, 0-255, channels first, {h}x{w} pixels",
            "resize": list(self.resize) if self.resize else None,
            "normalisation": self.normalisation("uint8"),
            "class_names": list(self.classes),
        }
