"""A small, fast CNN for 28x28 digits."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from litlab.models.base import LitTask


def conv_net(
    channels: Sequence[int], num_classes: int, dropout: float, stem: int = 0
) -> nn.Sequential:
    """An optional stem, blocks of conv3x3-maxpool-BN-ReLU, then one linear layer.

    The stem (``stem`` channels, 5x5, stride 2) halves the image before anything else: on
    28x28 digits it costs little accuracy and saves most of the compute of a full-size first
    block. Each block halves the image too; pooling before BN and ReLU gives the same kind of
    features as after, on 4x fewer pixels.
    """
    layers: list[nn.Module] = []
    size, c_in = 28, 1
    if stem:
        layers += [
            nn.Conv2d(1, stem, 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        ]
        size, c_in = size // 2, stem
    for c_out in channels:
        layers += [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
        size, c_in = size // 2, c_out
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in * size * size, num_classes)]
    return nn.Sequential(*layers)


class MNISTClassifier(LitTask):
    """Cross-entropy on a ``conv_net``; ``stem`` and ``channels`` set its depth and widths."""

    def __init__(
        self,
        channels: Sequence[int] = (32, 64),
        stem: int = 16,
        num_classes: int = 10,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        channels_last: bool = True,
        compile: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        self.net = conv_net(channels, num_classes, dropout, stem)
        # NHWC is what oneDNN (CPU) and cuDNN tensor cores run fastest.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile:
            self.net.compile()  # in place: the state_dict keys stay those of the plain net
        self.label_smoothing = label_smoothing
        self.add_metrics(
            # argmax labels are always valid: skip the per-step input checks (torch.unique).
            MetricCollection(
                {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=self.memory_format))

    def loss_fn(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y, label_smoothing=self.label_smoothing)

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    output_meaning = "one logit per class: softmax gives the class probabilities, argmax the class"

    def prediction_columns(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        probs = out.float().softmax(-1)
        columns = {f"prob_{i}": probs[:, i] for i in range(probs.shape[-1])}
        return {"prediction": out.argmax(-1), **columns}

    def figures(self, datamodule, count: int = 32) -> dict:
        from litlab.tracking.plots import confusion_matrix, digit_grid

        x, y, out = self.predict_split(datamodule, "test")
        pred = out.argmax(-1)
        k = self.hparams.num_classes
        matrix = torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)
        wrong = pred != y
        # The mistakes first, most confident first; if there are fewer than `count`, the least
        # confident right answers fill the grid.
        confidence = out.softmax(-1).max(-1).values
        order = torch.argsort(torch.where(wrong, 2 + confidence, 1 - confidence), descending=True)
        shown = order[:count]
        title = f"{int(wrong.sum())} of {len(y)} test digits misclassified"
        if wrong.sum() < count:
            title += " (then the least confident right answers)"
        return {
            "confusion_matrix": confusion_matrix(
                matrix, f"test accuracy {1 - wrong.float().mean():.2%}"
            ),
            "misclassified": digit_grid(x[shown], pred[shown], y[shown], title),
        }
