"""ImageClassifier: shapes and channels from config, MNIST's by default."""

import pytest
import torch
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.config import check_targets
from litlab.models import ImageClassifier
from litlab.run import fit_and_test
from tests.conftest import SMALL_MNIST


def test_shape_and_channels_come_from_the_arguments():
    rgb = ImageClassifier(channels=[8, 16], stem=0, in_channels=3, image_size=32, num_classes=5)
    assert rgb(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    wide = ImageClassifier(channels=[4], stem=8, image_size=[20, 45])  # odd sides round
    assert wide(torch.zeros(2, 1, 20, 45)).shape == (2, 10)
    assert wide.net[-1].in_features == 4 * 5 * 11


def test_too_small_an_image_fails_at_construction_in_one_line():
    ImageClassifier(channels=[4, 4], stem=0, image_size=4)  # 4 -> 2 -> 1: fits
    with pytest.raises(LitlabError, match="model.image_size=4 is too small") as err:
        ImageClassifier(channels=[4, 4], stem=4, image_size=4)
    assert "\n" not in str(err.value)
    # A range of one argument is its type, read before anything is built.
    model = OmegaConf.create({"_target_": "litlab.models.ImageClassifier", "in_channels": 0})
    with pytest.raises(LitlabError, match="model.in_channels=0 is not allowed: an integer >= 1"):
        check_targets(model, "model")


def test_the_defaults_are_mnists():
    default = ImageClassifier()
    assert default(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert default.net[-1].in_features == 64 * 3 * 3  # stem 28 -> 14, two blocks -> 7 -> 3


def test_short_cnn_run_learns_the_small_digits(cfg_for):
    run = fit_and_test(cfg_for("logger=none", "trainer.max_epochs=3", *SMALL_MNIST))
    assert run.metrics["test/acc"] > 0.9
    assert run.trainer.checkpoint_callback.best_model_path.endswith("best.ckpt")
