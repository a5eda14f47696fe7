"""A bare ``self.save_hyperparameters()`` keeps checkpoints loadable with ``weights_only=True``."""

from functools import partial

import lightning as L
import torch
from omegaconf import OmegaConf
from torch import nn
from typing_extensions import override

from litlab.models import BinaryClassifier, ImageClassifier, LitTask, PolynomialRegression


class Odd(LitTask):
    """Takes arguments of every kind, plain or not, and saves them all without naming any."""

    def __init__(self, width: int = 3, names=("a", "b"), net=None, act=torch.relu, w=None, **kw):
        super().__init__(**kw)
        self.save_hyperparameters()
        self.net = net or nn.Linear(width, 1)


def test_only_plain_values_become_hyperparameters():
    model = Odd(
        width=2,
        net=nn.Linear(2, 1),
        w=torch.ones(2),
        optimizer=partial(torch.optim.SGD, lr=0.1),
        scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1),
    )
    assert dict(model.hparams) == {"width": 2, "names": ("a", "b")}
    assert dict(model.hparams_initial) == dict(model.hparams)


def test_config_nodes_are_kept_as_plain_values():
    model = ImageClassifier(channels=OmegaConf.create([4, 8]))
    assert model.hparams.channels == [4, 8] and type(model.hparams.channels) is list


def test_a_dict_of_hyperparameters_is_filtered_too():
    class Given(LitTask):
        def __init__(self, **kwargs):
            super().__init__()
            self.save_hyperparameters({"depth": 2, "optimizer": "adam", "f": print})
            self.net = nn.Linear(1, 1)

    assert dict(Given().hparams) == {"depth": 2}


def test_every_task_saves_its_hyperparameters_without_ignore_lists():
    sgd = partial(torch.optim.SGD, lr=0.1)
    binary = BinaryClassifier(hidden_size=4, optimizer=sgd, scheduler_interval="epoch")
    assert dict(binary.hparams) == {
        "in_features": 2,
        "hidden_size": 4,
        "scheduler_interval": "epoch",
    }
    assert dict(PolynomialRegression(degree=2, optimizer=sgd).hparams) == {"degree": 2}
    image = ImageClassifier(channels=[4], optimizer=sgd, scheduler=None)
    assert image.hparams.channels == [4] and image.hparams.num_classes == 10
    assert "optimizer" not in image.hparams and "scheduler" not in image.hparams


def test_the_checkpoint_of_a_bare_save_loads_with_weights_only(tmp_path):
    model = Odd(width=2, net=nn.Linear(2, 1), w=torch.ones(2), optimizer=partial(torch.optim.SGD))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    ckpt = torch.load(tmp_path / "model.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"] == {"width": 2, "names": ("a", "b")}


def test_lightning_hooks_are_marked_as_overrides():
    for hook in ("training_step", "configure_optimizers", "on_train_epoch_end", "forward"):
        assert getattr(getattr(LitTask, hook), "__override__", False), hook
    assert override  # the marker litlab uses (typing_extensions, as on Python 3.10 and 3.11)
