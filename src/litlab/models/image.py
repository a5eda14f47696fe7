"""A small, fast CNN for images of any size and channel count (MNIST's by default)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from litlab import LitlabError
from litlab.config.values import Classes, Count, Natural, Share
from litlab.models.classification import MulticlassClassifier


def conv_net(
    channels: Sequence[int],
    num_classes: int,
    dropout: float,
    stem: int = 0,
    in_channels: int = 1,
    image_size: int | Sequence[int] = 28,
) -> nn.Sequential:
    """An optional stem, blocks of conv3x3-maxpool-BN-ReLU, then one linear layer.

    The stem (``stem`` channels, 5x5, stride 2) halves the image before anything else: on
    28x28 digits it costs little accuracy and saves most of the compute of a full-size first
    block. Each block halves the image too; pooling before BN and ReLU gives the same kind of
    features as after, on 4x fewer pixels. ``image_size`` (one side, or ``[height, width]``)
    sets the linear layer's input; an image too small to halve that often is a LitlabError.
    """
    layers: list[nn.Module] = []
    h, w = (image_size, image_size) if isinstance(image_size, int) else map(int, image_size)
    c_in = in_channels
    if stem:
        layers += [
            nn.Conv2d(in_channels, stem, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        ]
        (h, w), c_in = ((h + 1) // 2, (w + 1) // 2), stem  # a stride-2 conv rounds up
    for c_out in channels:
        if min(h, w) < 2:
            raise LitlabError(
                f"model.image_size={image_size} is too small for the stem and "
                f"{len(channels)} blocks (each halves the image): use fewer model.channels, "
                "no model.stem, or larger images."
            )
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
        (h, w), c_in = (h // 2, w // 2), c_out  # pooling rounds down
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * h * w, num_classes)]
    return nn.Sequential(*layers)


class ImageClassifier(MulticlassClassifier):
    """Cross-entropy on a ``conv_net`` over ``in_channels`` x ``image_size`` images (what the
    datamodule hands the model after ``on_after_batch_transfer``); ``stem`` and ``channels``
    set its depth and widths. The defaults are MNIST's: one channel, 28x28, ten classes."""

    def __init__(
        self,
        channels: Sequence[Count] = (32, 64),
        stem: Natural = 16,  # 0: no stem
        num_classes: Classes = 10,
        in_channels: Count = 1,
        image_size: Count | tuple[Count, Count] = 28,  # one side, or [height, width]
        dropout: Share = 0.0,
        label_smoothing: Share = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        **kwargs,
    ):
        super().__init__(num_classes=num_classes, label_smoothing=label_smoothing, **kwargs)
        self.save_hyperparameters()
        self.net = conv_net(channels, num_classes, dropout, stem, in_channels, image_size)
        # NHWC is what oneDNN (CPU) and cuDNN tensor cores run fastest.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            self.net.compile()  # in place: the state_dict keys stay those of the plain net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))
