"""The callbacks litlab adds to every run: reseeding each epoch, stopping on a NaN loss."""

from types import SimpleNamespace

import pytest
import torch

from litlab import LitlabError
from litlab.run.callbacks import ReseedEveryEpoch, StopOnNonFinite


def draws_after_reseeding(epoch: int, rank: int = 0, seed: int = 7) -> torch.Tensor:
    torch.rand(int(torch.randint(1, 9, ())))  # whatever the RNG went through before
    trainer = SimpleNamespace(current_epoch=epoch, global_rank=rank)
    ReseedEveryEpoch(seed).on_train_epoch_start(trainer, None)
    return torch.rand(4)


def test_each_epochs_randomness_depends_on_seed_epoch_and_rank_alone():
    assert torch.equal(draws_after_reseeding(3), draws_after_reseeding(3))
    others = [draws_after_reseeding(4), draws_after_reseeding(3, rank=1)]
    others.append(draws_after_reseeding(3, seed=8))
    assert not any(torch.equal(draws_after_reseeding(3), other) for other in others)


def test_a_nonfinite_training_loss_stops_at_the_end_of_its_epoch():
    stop, module = StopOnNonFinite(), SimpleNamespace(device=torch.device("cpu"))
    for epoch, losses in enumerate([[1.0, 2.0], [1.0, float("nan"), float("inf"), 3.0]]):
        trainer = SimpleNamespace(current_epoch=epoch)
        stop.on_train_epoch_start(trainer, module)
        for i, loss in enumerate(losses):
            stop.on_train_batch_end(trainer, module, {"loss": torch.tensor(loss)}, None, i)
        if epoch == 0:
            stop.on_train_epoch_end(trainer, module)  # all finite: training goes on
    with pytest.raises(LitlabError, match=r"NaN or infinite in 2 step\(s\) of epoch 1\. Lower"):
        stop.on_train_epoch_end(trainer, module)
