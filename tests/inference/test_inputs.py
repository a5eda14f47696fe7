"""Each datamodule's describe_input() matches the samples it really stores."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest

from lessons.data import RingsDataModule
from litlab import LitlabError
from litlab.data import BlobsDataModule, LinearDataModule, MNISTDataModule, SineDataModule
from litlab.data.base import LitData
from litlab.inference.inputs import input_spec, read_input

SMALL = {"num_samples": 10, "num_val": 10, "num_test": 10}


@pytest.mark.parametrize(
    "make",
    [
        lambda root: LinearDataModule(**SMALL),
        lambda root: SineDataModule(**SMALL),
        lambda root: BlobsDataModule(**SMALL),
        lambda root: RingsDataModule(**SMALL),
        lambda root: MNISTDataModule(str(root), val_size=200, download=False),
    ],
    ids=["linear", "sine", "blobs", "rings", "mnist"],
)
def test_the_description_matches_the_stored_samples(make, mnist_root):
    datamodule = make(mnist_root)
    spec = input_spec(datamodule)  # before any data is read
    datamodule.setup("test")
    x, _ = next(iter(datamodule.test_dataloader()))
    assert list(x.shape[1:]) == spec["shape"]
    assert str(x.dtype) == f"torch.{spec['dtype']}"
    assert spec.get("names") is None or len(spec["names"]) == x.shape[1]


def test_a_datamodule_that_does_not_describe_its_samples_gets_one_line(tmp_path):
    class Plain(L.LightningDataModule):
        pass

    class Silent(LitData):
        pass

    for datamodule in (Plain(), Silent()):
        with pytest.raises(LitlabError, match="does not say what one input looks like"):
            input_spec(datamodule)

    class Images(LitData):
        def describe_input(self) -> dict:
            return {"shape": [4, 4], "dtype": "uint8", "image": "a test pattern"}

    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(LitlabError, match="a.png: Images reads no image files"):
        read_input(tmp_path, Images())


@pytest.mark.parametrize(
    "pixels",
    [
        np.arange(2 * 28 * 28).reshape(2, 28, 28) % 2 == 0,  # booleans
        (np.arange(2 * 28 * 28).reshape(2, 28, 28) % 2).astype(np.uint8),  # 0 and 1
        np.full((2, 28, 28), 0.5),  # floats scaled to 0..1
    ],
    ids=["bool", "uint8-0-1", "float-0-1"],
)
def test_binarized_or_scaled_images_are_refused_with_the_fix(tmp_path, pixels):
    """Issue 21 item 5: a binarized MNIST .npy was read as near-black images, each "1"."""
    path = tmp_path / "x.npy"
    np.save(path, pixels)
    datamodule = MNISTDataModule(str(tmp_path), download=False)
    with pytest.raises(LitlabError, match="pixel values 0..255.*multiply by 255") as err:
        read_input(path, datamodule)
    assert "\n" not in str(err.value)
    np.save(path, (pixels * 255).astype(np.uint8))  # the fix it gives
    assert read_input(path, datamodule).x.max() == int(pixels.max() * 255)
