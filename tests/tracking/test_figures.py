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
