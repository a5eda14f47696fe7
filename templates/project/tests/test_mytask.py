"""litlab's checks of a task (``litlab.testing``), on this project's experiment: one small run,
trained once for this file, then each check on it. Run them with ``make test``."""

import pytest

from litlab import testing

# A few epochs are enough to see the loss fall; add overrides to keep your data small here.
SMALL = ["trainer.max_epochs=3"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return testing.small_run("mytask", tmp_path_factory.mktemp("run"), *SMALL)


def test_loss_falls(run_dir):
    testing.check_loss_falls(run_dir)


def test_checkpoint_loads_weights_only(run_dir):
    testing.check_checkpoint(run_dir)


def test_litlab_load(run_dir):
    testing.check_load(run_dir)


def test_predict(run_dir, tmp_path):
    testing.check_predict(run_dir, tmp_path / "predictions.csv")


def test_export(run_dir, tmp_path):
    testing.check_export(run_dir, tmp_path / "model.pt2")
