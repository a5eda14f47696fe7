import pytest

from litlab.run import fit_and_test

# One seed in `make test`, four in `make test-all`.
SEEDS = [0, *(pytest.param(seed, marks=pytest.mark.slow) for seed in (1, 2, 3))]


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_regression_is_near_bayes_optimal_on_fresh_points(cfg_for, seed):
    run = fit_and_test(cfg_for("experiment=logistic", "logger=none", f"seed={seed}"))
    assert len(run.datamodule.splits["test"][0]) == 10_000  # fresh points, never trained on
    bayes = run.datamodule.bayes_accuracy()
    assert abs(run.metrics["test/acc"] - bayes) < 0.005, (run.metrics["test/acc"], bayes)


def test_hidden_layer_variant_trains_on_the_same_data(cfg_for):
    run = fit_and_test(cfg_for("experiment=logistic", "model=mlp_classifier", "logger=none"))
    assert run.model.hparams.hidden_size == 16
    assert run.metrics["test/acc"] > 0.97
