import torch

from litlab.models import MNISTClassifier
from litlab.run import fit_and_test
from tests.conftest import SMALL_MNIST


def test_cnn_output_shape_and_width_setting():
    model = MNISTClassifier(channels=[4, 8])
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_short_cnn_run_learns_the_small_digits(cfg_for):
    run = fit_and_test(cfg_for("logger=none", "trainer.max_epochs=3", *SMALL_MNIST))
    assert run.metrics["test/acc"] > 0.9
    assert run.trainer.checkpoint_callback.best_model_path.endswith("best.ckpt")
