import pytest
import torch

from lessons.data import write_idx
from litlab import LitlabError
from litlab.data import MNISTDataModule


def test_reads_idx_files_into_uint8_splits(mnist_root):
    dm = MNISTDataModule(str(mnist_root), val_size=200, batch_size=64, download=False)
    dm.prepare_data()
    dm.setup()
    sizes = {k: v[0].shape for k, v in dm.splits.items()}
    assert sizes == {"train": (1000, 28, 28), "val": (200, 28, 28), "test": (300, 28, 28)}
    assert all(v[0].dtype == torch.uint8 for v in dm.splits.values())
    x, y = next(iter(dm.train_dataloader()))
    x, y = dm.on_after_batch_transfer((x, y), 0)
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_test_split_never_touches_train_or_val(mnist_root):
    dm = MNISTDataModule(str(mnist_root), val_size=200, download=False)
    dm.setup()
    rows = {k: {bytes(img.numpy()) for img in v[0]} for k, v in dm.splits.items()}
    assert not rows["test"] & rows["train"] and not rows["test"] & rows["val"]
    assert not rows["train"] & rows["val"]
    assert len(rows["train"]) + len(rows["val"]) == 1200


def test_val_split_is_seeded(mnist_root):
    a, b, c = (
        MNISTDataModule(str(mnist_root), val_size=200, seed=s, download=False) for s in (0, 0, 1)
    )
    for dm in (a, b, c):
        dm.setup()
    assert torch.equal(a.splits["val"][1], b.splits["val"][1])
    assert not torch.equal(a.splits["val"][0], c.splits["val"][0])


def test_missing_files_name_the_directory_and_the_setting(tmp_path):
    dm = MNISTDataModule(str(tmp_path), download=False)
    with pytest.raises(LitlabError) as err:
        dm.setup()
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "paths.data_dir" in message
    assert "train-images-idx3-ubyte" in message


def test_corrupt_file_gets_the_same_clear_error(tmp_path, mnist_root):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in (mnist_root / "MNIST" / "raw").iterdir():
        (raw / f.name).write_bytes(f.read_bytes())
    write_idx(raw / "train-labels-idx1-ubyte", torch.zeros(7, dtype=torch.uint8))  # wrong count
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(LitlabError, match="MNIST could not be read"):
        MNISTDataModule(str(tmp_path), download=False).setup()
