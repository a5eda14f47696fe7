"""Polynomial regression: degree 1 is the linear task, degree 3 fits sin(x) with a cubic."""

from __future__ import annotations

import torch
from torch import nn

from litlab.config.values import Count
from litlab.models.base import LitTask


class PowerFeatures(nn.Module):
    """``x -> [x, x**2, ..., x**degree]`` for a single input feature."""

    def __init__(self, degree: int):
        super().__init__()
        self.register_buffer("powers", torch.arange(1, degree + 1, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x**self.powers


class PolynomialRegression(LitTask):
    """``y = c0 + c1 x + ... + cd x^d`` fitted with MSE; ``coefficients`` reads them back."""

    def __init__(self, degree: Count = 1, **kwargs):
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.net = nn.Sequential(PowerFeatures(degree), nn.Linear(degree, 1))
        self.loss_fn = nn.functional.mse_loss
        self.add_metrics(None)  # the MSE loss is the metric

    @property
    def coefficients(self) -> list[float]:
        """``[c0, c1, ..., cd]``: intercept first. For degree 1: ``[bias, weight]``."""
        linear = self.net[1]
        return [linear.bias.item(), *linear.weight.flatten().tolist()]

    def figures(self, datamodule) -> dict:
        from litlab.tracking.plots import regression_fit

        x, y, _ = self.predict_split(datamodule, "test")
        grid = torch.linspace(x.min().item(), x.max().item(), 200)[:, None]
        with torch.no_grad():
            fitted = self(grid.to(self.device)).float().cpu()
        terms = " + ".join(
            f"{c:.3g}" + (f" x^{i}" if i > 1 else " x" if i else "")
            for i, c in enumerate(self.coefficients)
        )
        return {"fit": regression_fit(x, y, grid, fitted, f"y = {terms}")}

    def summary(self) -> dict[str, float]:
        c = self.coefficients
        if len(c) == 2:
            return {"weight": c[1], "bias": c[0]}
        return {f"c{i}": v for i, v in enumerate(c)}
