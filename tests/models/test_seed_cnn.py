import pytest
import torch
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.config import check_targets
from litlab.models import SeedCNN
from litlab.run import fit_and_test
from tests.conftest import SMALL_MNIST


def test_seed_cnn_has_the_tutorials_shape():
    model = SeedCNN()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # conv 1->32 (3x3), conv 32->64 (3x3), linear 64*4*4 = 1024 -> 10
    assert sum(p.numel() for p in model.parameters()) == 320 + 18_496 + 10_250
    assert SeedCNN(image_size=12)(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    model = OmegaConf.create({"_target_": "litlab.models.SeedCNN", "image_size": 4})
    with pytest.raises(LitlabError, match="model.image_size=4 is not allowed: an integer >= 5"):
        check_targets(model, "model")


def test_shrinking_commutes_with_normalizing():
    # The tutorial resizes, then normalizes; litlab normalizes, then the model resizes.
    x = torch.rand(2, 1, 28, 28)
    shrink = SeedCNN().net[0]
    assert torch.allclose(shrink((x - 0.13) / 0.31), (shrink(x) - 0.13) / 0.31, atol=1e-6)


def test_seed_experiment_learns_the_small_digits(cfg_for):
    run = fit_and_test(
        cfg_for("experiment=mnist_seed", "logger=none", "trainer.max_epochs=3", *SMALL_MNIST)
    )
    assert isinstance(run.model, SeedCNN)
    assert run.cfg.data.batch_size == 100  # SMALL_MNIST's, over the experiment's 512
    assert run.metrics["test/acc"] > 0.9
