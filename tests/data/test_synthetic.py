import torch

from litlab.data import BlobsDataModule, LinearDataModule, SineDataModule


def test_linear_data_follows_the_line_and_the_seed():
    dm = LinearDataModule(num_samples=5000, seed=3)
    dm.setup()
    x, y = dm.splits["train"]
    assert x.shape == (5000, 1) and 0 <= x.min() and x.max() <= 10
    residual = y - (2 * x + 5)
    assert abs(residual.mean()) < 0.05 and abs(residual.std() - 1) < 0.05
    again = LinearDataModule(num_samples=5000, seed=3)
    again.setup()
    assert torch.equal(again.splits["train"][0], x)
    other = LinearDataModule(num_samples=5000, seed=4)
    other.setup()
    assert not torch.equal(other.splits["train"][0], x)


def test_splits_are_independent_draws():
    dm = SineDataModule(num_samples=100, num_val=50, num_test=70)
    dm.setup()
    assert {k: len(v[0]) for k, v in dm.splits.items()} == {"train": 100, "val": 50, "test": 70}
    assert not set(dm.splits["train"][0].flatten().tolist()) & set(
        dm.splits["test"][0].flatten().tolist()
    )
    x, y = dm.splits["train"]
    assert torch.allclose(y, torch.sin(x))


def test_blobs_sizes_centres_and_bayes_accuracy():
    dm = BlobsDataModule(num_samples=2000)
    dm.setup()
    x, y = dm.splits["train"]
    assert len(x) == 4000 and y.sum() == 2000
    assert torch.allclose(x[y == 0].mean(0), torch.tensor([2.7, 2.7]), atol=0.1)
    assert torch.allclose(x[y == 1].mean(0), torch.tensor([-0.7, -0.7]), atol=0.1)
    assert abs(dm.bayes_accuracy() - 0.9919) < 1e-4
