"""Pictures after testing: real PNGs in the run dir, or none when switched off."""

import pytest

from litlab.run import fit_and_test
from tests.conftest import SMALL_MNIST
from tests.tracking.conftest import assert_picture, manifest

PICTURES = {
    "linear": ({"fit"}, ["trainer.max_epochs=3"]),
    "sine": ({"fit"}, ["trainer.max_epochs=3"]),
    "logistic": ({"decision_boundary"}, ["trainer.max_epochs=3"]),
    "mnist": ({"confusion_matrix", "misclassified"}, ["trainer.max_epochs=1", *SMALL_MNIST]),
}


@pytest.mark.parametrize("experiment", sorted(PICTURES))
def test_each_experiment_saves_its_pictures(cfg_for, tmp_path, experiment):
    names, quick = PICTURES[experiment]
    run = fit_and_test(cfg_for(f"experiment={experiment}", "logger=none", *quick))
    figures = tmp_path / "run" / "figures"
    assert {p.stem for p in figures.glob("*.png")} == names
    for name in names:
        assert_picture(figures / f"{name}.png")
    assert manifest(tmp_path / "run")["figures"] == sorted(str(p) for p in figures.glob("*.png"))
    assert run.metrics  # the run itself went through


def test_pictures_can_be_switched_off(cfg_for, tmp_path):
    fit_and_test(cfg_for("experiment=linear", "logger=none", "callbacks.figures=null"))
    assert not (tmp_path / "run" / "figures").exists()


def test_a_picture_is_drawn_once_with_the_pixels_savefig_gives(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from litlab.tracking import plots

    matrix = torch.tensor([[950, 3, 0], [7, 1020, 12], [0, 5, 990]])
    images = torch.rand(9, 1, 12, 12)
    for make in (
        lambda: plots.confusion_matrix(matrix, "test accuracy 99%"),
        lambda: plots.image_grid(images, torch.arange(9), torch.zeros(9), "t"),
    ):
        make().savefig(tmp_path / "saved.png", dpi=80)
        plots.write_png(plots.render(make(), dpi=80), tmp_path / "drawn.png")
        saved, drawn = (np.asarray(Image.open(tmp_path / n)) for n in ("saved.png", "drawn.png"))
        assert saved.shape == drawn.shape and (saved == drawn).all()
