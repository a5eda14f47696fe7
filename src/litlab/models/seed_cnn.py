"""The MNIST recipe of the PyTorch tutorial litlab's lessons start from: digits shrunk to 8x8.

Two unpadded 3x3 convolutions (32 and 64 channels) leave a 64 x 4 x 4 = 1024-value feature map,
which one linear layer maps to the ten classes. Small enough to train on a laptop in seconds;
``notebooks/03_mnist_cnn.ipynb`` sets it next to litlab's default ``MNISTClassifier``.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from litlab import LitlabError
from litlab.models.base import LitTask
from litlab.models.mnist_cnn import MNISTClassifier


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


def seed_net(image_size: int = 8, channels: tuple[int, int] = (32, 64), num_classes: int = 10):
    side = image_size - 4  # each unpadded 3x3 convolution takes one pixel off every border
    return nn.Sequential(
        Shrink(image_size),
        nn.Conv2d(1, channels[0], 3),
        nn.ReLU(),
        nn.Conv2d(channels[0], channels[1], 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels[1] * side * side, num_classes),
    )


class SeedCNN(LitTask):
    """The tutorial's network as a litlab task: cross-entropy, accuracy, MNIST pictures.

    The tutorial ends in ``log_softmax`` and trains with ``NLLLoss``; returning logits and using
    ``cross_entropy`` computes the same loss in one numerically safer step.
    """

    def __init__(
        self,
        image_size: int = 8,
        channels: tuple[int, int] = (32, 64),
        num_classes: int = 10,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if image_size < 5:
            raise LitlabError(f"model.image_size={image_size}: two 3x3 convs need 5 or more.")
        self.net = seed_net(image_size, tuple(channels), num_classes)
        self.loss_fn = nn.functional.cross_entropy
        self.add_metrics(
            MetricCollection(
                {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
            )
        )

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    # The same pictures as the default MNIST model: a confusion matrix and the mistakes.
    figures = MNISTClassifier.figures
    # ... and the same prediction rows: the class and its probabilities.
    output_meaning = MNISTClassifier.output_meaning
    prediction_columns = MNISTClassifier.prediction_columns
