"""Golden results: gradient descent through the whole stack lands on the least-squares solution."""

import pytest
import torch

from litlab.run import fit_and_test


def lstsq_coefficients(x: torch.Tensor, y: torch.Tensor, degree: int) -> torch.Tensor:
    features = torch.cat([x**k for k in range(degree + 1)], dim=1)
    return torch.linalg.lstsq(features.double(), y.double()).solution.flatten().float()


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_linear_matches_closed_form_least_squares(cfg_for, seed):
    run = fit_and_test(cfg_for("experiment=linear", "logger=none", f"seed={seed}"))
    x, y = run.datamodule.splits["train"]
    expected = lstsq_coefficients(x, y, 1)
    learned = torch.tensor(run.model.coefficients)
    assert torch.allclose(learned, expected, atol=1e-2), (learned, expected)
    bias, weight = learned.tolist()
    assert abs(weight - 2) < 0.05 and abs(bias - 5) < 0.2
    assert run.metrics["fit/weight"] == pytest.approx(weight)
    assert run.metrics["test/loss"] < 1.3  # the noise variance is 1


def test_cubic_matches_least_squares_fit_of_sine(cfg_for):
    run = fit_and_test(cfg_for("experiment=sine", "logger=none"))
    x, y = run.datamodule.splits["train"]
    expected = lstsq_coefficients(x, y, 3)
    learned = torch.tensor(run.model.coefficients)
    assert torch.allclose(learned, expected, atol=1e-2), (learned, expected)
    assert run.metrics["test/loss"] < 0.01


def test_polynomial_degree_is_configurable(cfg_for):
    run = fit_and_test(
        cfg_for("experiment=sine", "model.degree=5", "logger=none", "trainer.max_epochs=2")
    )
    assert len(run.model.coefficients) == 6
