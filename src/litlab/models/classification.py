"""Classifiers: binary (logistic regression, or one hidden layer) and the shared base of every
multiclass one, with the pictures all of them draw (a confusion matrix and the mistakes)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAccuracy, MulticlassAccuracy

from litlab.config.values import Classes, Count, Share
from litlab.models.base import LitTask


def binary_loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """BCE with logits on labels 0/1, as floats (blobs) or class ids (a table's)."""
    return nn.functional.binary_cross_entropy_with_logits(out, y.float())


class BinaryClassifier(LitTask):
    """``hidden_size=None`` is plain logistic regression (one linear layer, BCE with logits)."""

    def __init__(self, in_features: Count = 2, hidden_size: Count | None = None, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if hidden_size:
            self.net = nn.Sequential(
                nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1)
            )
        else:
            self.net = nn.Linear(in_features, 1)
        self.loss_fn = binary_loss
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


class MulticlassClassifier(LitTask):
    """Cross-entropy on ``num_classes`` logits: accuracy, the argmax class and the class
    probabilities as predictions, and ``classifier_figures`` as pictures. Subclasses set
    ``self.net`` (images in, logits out)."""

    def __init__(self, num_classes: Classes = 10, label_smoothing: Share = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.add_metrics(
            # argmax labels are always valid: skip the per-step input checks (torch.unique).
            MetricCollection(
                {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
            )
        )

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
        return classifier_figures(*self.predict_split(datamodule, "test"), count=count)


def classifier_figures(
    x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor, count: int = 32
) -> dict:
    """A confusion matrix and a grid of the test mistakes, for any classifier's ``(x, y,
    logits)`` on the CPU (``LitTask.predict_split``). The grid needs ``x`` to be images (any
    size, grey or colour); other inputs get the matrix alone."""
    from litlab.tracking.plots import confusion_matrix, image_grid, is_image_batch

    pred = logits.argmax(-1)
    y = y.reshape(len(pred)).long()
    k = logits.shape[-1]
    matrix = torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)
    wrong = pred != y
    figures = {
        "confusion_matrix": confusion_matrix(
            matrix, f"test accuracy {1 - wrong.float().mean():.2%}"
        )
    }
    if not is_image_batch(x):
        return figures
    # The mistakes first, most confident first; if there are fewer than `count`, the least
    # confident right answers fill the grid.
    confidence = logits.softmax(-1).max(-1).values
    order = torch.argsort(torch.where(wrong, 2 + confidence, 1 - confidence), descending=True)
    shown = order[:count]
    title = f"{int(wrong.sum())} of {len(y)} test images misclassified"
    if wrong.sum() < count:
        title += " (then the least confident right answers)"
    figures["misclassified"] = image_grid(x[shown], pred[shown], y[shown], title)
    return figures
