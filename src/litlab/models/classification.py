"""Binary classification of 2-D points: logistic regression, or one hidden layer."""

from __future__ import annotations

import torch
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
        # Hard labels in, no input checks: torchmetrics would otherwise look at every batch on
        # the host (are the values in [0, 1]? only 0s and 1s?), a device sync per step.
        self.add_metrics(MetricCollection({"acc": BinaryAccuracy(validate_args=False)}))

    def forward(self, x):
        return self.net(x).squeeze(-1)

    def predictions(self, out):
        return (out > 0).long()  # the predicted class; p(class 1) is out.sigmoid()

    output_meaning = "the logit of class 1: sigmoid gives p(class 1), the class is 1 where > 0"

    def prediction_columns(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        p1 = out.float().sigmoid()
        return {"prediction": self.predictions(out), "prob_0": 1 - p1, "prob_1": p1}

    def figures(self, datamodule) -> dict:
        if self.hparams.in_features != 2:
            return {}  # a boundary in more than two dimensions is not one picture
        from litlab.tracking.plots import decision_boundary

        x, y, out = self.predict_split(datamodule, "test")
        acc = ((out.sigmoid() > 0.5).float() == y).float().mean().item()
        lo, hi = x.min(0).values - 0.5, x.max(0).values + 0.5
        xx, yy = torch.meshgrid(
            torch.linspace(lo[0], hi[0], 200), torch.linspace(lo[1], hi[1], 200), indexing="xy"
        )
        with torch.no_grad():
            grid = torch.stack([xx.flatten(), yy.flatten()], 1).to(self.device)
            prob = self(grid).float().sigmoid().cpu().reshape(xx.shape)
        title = f"test accuracy {acc:.2%}"
        return {"decision_boundary": decision_boundary(x, y, xx, yy, prob, title)}
