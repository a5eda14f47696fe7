"""TEMPLATE: a litlab task (a LightningModule). Copy to ``src/litlab/models/<name>.py``.

A small network classifying ``MyDataModule``'s points. ``LitTask`` brings the training, val
and test steps, per-epoch metrics, the optimizer and scheduler from the config: a task sets
``self.net``, ``self.loss_fn`` and its metrics, and may override what ``litlab.models.base``
lists (here ``predictions``, ``prediction_columns``, ``output_meaning`` and ``figures``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from litlab.config.values import Classes, Count
from litlab.models.base import LitTask


class MyClassifier(LitTask):
    """One hidden layer; cross-entropy on ``num_classes`` logits."""

    def __init__(
        self,
        in_features: Count = 2,  # ranges in the types, as in MyDataModule
        hidden_size: Count = 32,
        num_classes: Classes = 3,
        **kwargs,  # optimizer, scheduler, scheduler_interval: LitTask's, from the config
    ):
        super().__init__(**kwargs)
        # Every plain argument becomes a hyperparameter, stored in the checkpoint and logged;
        # optimizer, scheduler and anything not plain data (modules, functions, tensors) are
        # left out, so the checkpoint loads with torch.load(..., weights_only=True).
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_classes)
        )
        self.loss_fn = nn.functional.cross_entropy
        # Metrics compare predictions(out) with y; logged as train/acc, val/acc, test/acc.
        # validate_args=False: no host-side checks of every batch (a device sync per step).
        self.add_metrics(
            MetricCollection(
                {"acc": MulticlassAccuracy(num_classes, average="micro", validate_args=False)}
            )
        )

    def predictions(self, out: torch.Tensor) -> torch.Tensor:
        """What the metrics compare with the targets: here the class, from the logits."""
        return out.argmax(-1)

    # For litlab-export's JSON: what the raw output means.
    output_meaning = "one logit per class: softmax gives the class probabilities, argmax the class"

    def prediction_columns(self, out: torch.Tensor) -> dict[str, torch.Tensor]:
        """One row per sample in litlab-predict's file: a 1-D tensor per column."""
        probs = out.float().softmax(-1)
        return {"prediction": out.argmax(-1), **{f"prob_{i}": p for i, p in enumerate(probs.T)}}

    def figures(self, datamodule) -> dict:
        """Pictures saved to the run's figures/ folder after testing: ``{name: Figure}``."""
        from litlab.tracking.plots import confusion_matrix  # matplotlib: imported when needed

        # The test split (its first 10 000 samples) through the datamodule's own loader and
        # on_after_batch_transfer, as the model saw it in testing; all three on the CPU.
        x, y, out = self.predict_split(datamodule, "test")
        k = out.shape[-1]
        matrix = torch.bincount(y * k + out.argmax(-1), minlength=k * k).reshape(k, k)
        accuracy = (out.argmax(-1) == y).float().mean()
        return {"confusion_matrix": confusion_matrix(matrix, f"test accuracy {accuracy:.2%}")}
