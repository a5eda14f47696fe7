import torch

from litlab.data.loader import TensorLoader


def test_batches_cover_the_data_once_and_in_order_without_shuffle():
    x, y = torch.arange(10).float(), torch.arange(10)
    batches = list(TensorLoader(x, y, batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[1] for b in batches]), y)


def test_shuffle_depends_on_seed_and_epoch_only():
    x = y = torch.arange(100)
    a, b = (
        TensorLoader(x, y, 10, shuffle=True, seed=1),
        TensorLoader(x, y, 10, shuffle=True, seed=1),
    )
    first = torch.cat([t for t, _ in a])
    assert torch.equal(first, torch.cat([t for t, _ in b]))  # same seed and epoch: same order
    assert not torch.equal(first, torch.arange(100))
    a.sampler.set_epoch(1)
    second = torch.cat([t for t, _ in a])
    assert not torch.equal(first, second)
    assert torch.equal(second.sort().values, torch.arange(100))  # still each sample once


def test_ranks_get_disjoint_equal_shards():
    x = y = torch.arange(101)
    shards = [
        torch.cat([t for t, _ in TensorLoader(x, y, 8, shuffle=True, rank=r, world_size=2)])
        for r in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 50
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
