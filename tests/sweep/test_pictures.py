"""Pictures of a sweep: Optuna's plots of a study, or of a grid's jobs, saved as PNGs."""

from __future__ import annotations

import optuna
import pytest
from PIL import Image

from litlab.sweep import pictures
from litlab.sweep.results import TrialRow

ALL = ["history.png", "importances.png", "parallel_coordinates.png", "slices.png"]


def study(n: int) -> optuna.Study:
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    s.optimize(lambda t: (t.suggest_float("x", -2, 2) - 1) ** 2 + t.suggest_int("k", 1, 3), n)
    return s


def test_a_study_s_four_pictures_are_saved(tmp_path):
    saved = pictures.draw(study(6), tmp_path, "val/loss")
    assert [p.name for p in saved] == ALL
    for path in saved:
        assert path.parent == tmp_path / "figures" and Image.open(path).size[0] > 100


def test_a_study_without_finished_trials_gets_no_empty_pictures(tmp_path):
    assert pictures.draw(optuna.create_study(), tmp_path, "val/loss") == []
    assert not (tmp_path / "figures").exists()


def test_a_grid_is_drawn_as_a_study_of_its_jobs(tmp_path):
    rows = [
        TrialRow(str(i), [f"model.optimizer.lr={lr}", f"data.batch_size={bs}"], "complete", v)
        for i, (lr, bs, v) in enumerate([(0.1, 50, 0.3), (0.01, 50, 0.2), (0.1, 100, 0.5)])
    ]
    rows.append(TrialRow("3", ["model.optimizer.lr=0.01", "data.batch_size=100"], "failed"))
    grid = pictures.grid_study(rows, "min")
    assert [t.params for t in grid.trials] == [
        {"model.optimizer.lr": 0.1, "data.batch_size": 50},
        {"model.optimizer.lr": 0.01, "data.batch_size": 50},
        {"model.optimizer.lr": 0.1, "data.batch_size": 100},
    ]
    assert grid.best_value == 0.2
    assert [p.name for p in pictures.draw(grid, tmp_path, "val/loss")] == ALL


@pytest.mark.slow
def test_the_pictures_go_to_wandb_as_a_run_of_the_study_s_group(tmp_path):
    saved = pictures.draw(study(4), tmp_path, "val/loss")
    node = {"_target_": "lightning.pytorch.loggers.WandbLogger", "project": "t", "mode": "offline"}
    pictures.log_to_wandb(saved, {"wandb": node}, "linear-abc", tmp_path)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    media = sorted(p.name.split("_")[0] for p in run_dir.glob("files/media/images/sweep/*.png"))
    assert media == ["history", "importances", "parallel", "slices"]
