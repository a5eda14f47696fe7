"""ImageClassifier: shapes and channels from config; MNISTClassifier is its MNIST form."""

import pytest
import torch
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.config import check_targets
from litlab.models import ImageClassifier, MNISTClassifier


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


def test_the_mnist_name_and_module_still_work():
    from litlab.models.mnist_cnn import MNISTClassifier as old
    from litlab.models.mnist_cnn import conv_net

    assert old is MNISTClassifier is ImageClassifier
    default = MNISTClassifier()
    assert default(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    # The state_dict of an old MNIST checkpoint: same layers, same shapes.
    assert conv_net([32, 64], 10, 0.0, 16)[-1].in_features == 64 * 3 * 3
    assert default.net[-1].in_features == 64 * 3 * 3
