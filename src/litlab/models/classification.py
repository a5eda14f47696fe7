"""Binary classification of 2-D points: logistic regression, or one hidden layer."""

from __future__ import annotations

from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy

from litlab.models.base import LitTask


class BinaryClassifier(LitTask):
    """``hidden_size=None`` is plain logistic regression (one linear layer, BCE with logits)."""

    def __init__(self, in_features: int = 2, hidden_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if hidden_size:
            self.net = nn.Sequential(
                nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
            )
        else:
            self.net = nn.Linear(in_features, 1)
        self.loss_fn = nn.functional.binary_cross_entropy_with_logits
        self.add_metrics(MetricCollection({"acc": BinaryAccuracy()}))

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def predictions(self, out):
        return out.sigmoid()
