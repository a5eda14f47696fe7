"""The MNIST recipe of the PyTorch tutorial litlab's lessons start from: digits shrunk to 8x8.

Two unpadded 3x3 convolutions (32 and 64 channels) leave a 64 x 4 x 4 = 1024-value feature map,
which one linear layer maps to the ten classes. Small enough to train on a laptop in seconds;
``notebooks/03_mnist_cnn.ipynb`` sets it next to litlab's default ``ImageClassifier``.
"""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge
from torch import nn

from litlab.config.values import Classes, Count
from litlab.models.classification import MulticlassClassifier


class Shrink(nn.Module):
    """Resize images to ``size`` x ``size``, antialiased like torchvision's ``Resize`` on images.

    The datamodule hands the model normalized 28x28 digits. Normalizing and bilinear resizing
    commute (the resize weights sum to one), so resizing here sees the same pixels as the
    tutorial's resize-then-normalize transform, and the data module stays the shared one.
    """

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size and x.shape[-2] == self.size:
            return x
        return nn.functional.interpolate(
            x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
        )


def seed_net(
    image_size: int = 8,
    channels: tuple[int, int] = (32, 64),
    num_classes: int = 10,
    in_channels: int = 1,
):
    """Shrink to ``image_size``, two unpadded 3x3 convs with ReLU, one linear layer."""
    side = image_size - 4  # each unpadded 3x3 convolution takes one pixel off every border
    return nn.Sequential(
        Shrink(image_size),
        nn.Conv2d(in_channels, channels[0], 3),
        nn.ReLU(),
        nn.Conv2d(channels[0], channels[1], 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels[1] * side * side, num_classes),
    )


class SeedCNN(MulticlassClassifier):
    """The tutorial's network as a litlab task: cross-entropy, accuracy, and the pictures and
    prediction rows of every classifier (``MulticlassClassifier``).

    The tutorial ends in ``log_softmax`` and trains with ``NLLLoss``; returning logits and using
    ``cross_entropy`` computes the same loss in one numerically safer step.
    """

    def __init__(
        self,
        image_size: Annotated[int, Ge(5)] = 8,  # two unpadded 3x3 convolutions take 4 pixels
        channels: tuple[Count, Count] = (32, 64),
        num_classes: Classes = 10,
        in_channels: Count = 1,
        **kwargs,
    ):
        super().__init__(num_classes=num_classes, **kwargs)
        self.save_hyperparameters()
        self.net = seed_net(image_size, tuple(channels), num_classes, in_channels)
