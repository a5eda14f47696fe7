"""Each datamodule's describe_input() matches the samples it really stores."""

from __future__ import annotations

import pytest

from lessons.data import RingsDataModule
from litlab.data import BlobsDataModule, LinearDataModule, MNISTDataModule, SineDataModule
from litlab.inference.inputs import input_spec

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
