"""ImageDataModule: stored images become float [N, C, H, W], normalised as configured."""

import pytest
import torch

from litlab import LitlabError
from litlab.data import ImageDataModule, MNISTDataModule


def images(normalize=None) -> ImageDataModule:
    return ImageDataModule(batch_size=4, normalize=normalize)


def test_grey_images_get_a_channel_axis_and_mnists_exact_numbers(mnist_root):
    x = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    out = images({"mean": [0.1307], "std": [0.3081]}).to_model_input(x)
    assert out.shape == (5, 1, 28, 28) and out.dtype == torch.float32
    # What litlab's MNIST runs have always computed, to the bit.
    assert torch.equal(out, (x.unsqueeze(1).float() / 255 - 0.1307) / 0.3081)
    mnist = MNISTDataModule(str(mnist_root), download=False)
    assert torch.equal(mnist.on_after_batch_transfer((x, x), 0)[0], out)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_colour_images_in_either_layout_come_out_channels_first(layout):
    nchw = torch.randint(0, 256, (2, 3, 8, 6), dtype=torch.uint8)
    x = nchw.permute(0, 2, 3, 1) if layout == "NHWC" else nchw
    dm = images({"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.1]})
    out, _ = dm.on_after_batch_transfer((x, None), 0)
    assert out.shape == (2, 3, 8, 6)
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.2, 0.1]).view(1, 3, 1, 1)
    assert torch.allclose(out, (nchw.float() / 255 - mean) / std)
    assert images().to_model_input(x).shape == (2, 3, 8, 6)  # no normalize: layout alone


def test_float_images_are_not_rescaled():
    x = torch.rand(2, 1, 4, 4)
    assert torch.equal(images().to_model_input(x), x)
    assert images().normalisation("float32") == {"scale": 1.0}


def test_the_description_says_what_the_model_gets(mnist_root):
    mnist = MNISTDataModule(str(mnist_root), download=False)
    assert mnist.describe_input()["normalisation"] == {
        "scale": 1 / 255,
        "mean": [0.1307],
        "std": [0.3081],
    }
    none = MNISTDataModule(str(mnist_root), download=False, normalize=None)
    assert none.describe_input()["normalisation"] == {"scale": 1 / 255}
    rgb = images({"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]})
    assert rgb.normalisation()["mean"] == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    "normalize",
    [
        {"mean": [0.5]},
        {"mean": [0.5, 0.5], "std": [0.2]},
        {"mean": [0.5], "std": [0.0]},
        {"mean": [0.5], "std": [float("inf")]},
        {"mean": ["abc"], "std": [0.2]},
        {"mean": [], "std": []},
    ],
)
def test_a_bad_normalize_setting_is_one_line(normalize):
    with pytest.raises(LitlabError, match="data.normalize") as err:
        images(normalize)
    assert "\n" not in str(err.value)
