"""ArrayDataModule: x.npy and y.npy memory-mapped, read a sample at a time by workers, split
by folders or seeded fractions; train, resume, predict and export; bad arrays in one line."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import litlab
from litlab import LitlabError
from litlab.config import compose_config
from litlab.data import ArrayDataModule
from litlab.inference.export import description, export_model
from litlab.inference.predict import predict
from litlab.run import fit_and_test
from tests.conftest import assert_resume_is_exact, final_metrics, run_cli


def write_line(folder: Path, n: int, seed: int = 0) -> Path:
    """y = 2x + 5 on x in [0, 1] (float64, as numpy writes by default)."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(seed).uniform(0, 1, (n, 1))
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", 2 * x[:, 0] + 5)
    return folder


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("arrays")
    write_line(root / "train", 80)
    write_line(root / "test", 20, seed=1)
    return root


def arrays(root: Path, **kwargs) -> ArrayDataModule:
    settings = {"folder": ".", "batch_size": 8, "num_workers": 0, "val_fraction": 0.25}
    return ArrayDataModule(str(root), **{**settings, **kwargs})


def test_splits_are_memory_mapped_and_seeded(line):
    dm = arrays(line)
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 60, "val": 20, "test": 20}
    train = dm.datasets["train"]
    assert len(pickle.dumps(train)) < 2_000  # what a worker receives: paths and row numbers
    x, y = next(iter(dm.test_dataloader()))
    assert all(isinstance(a, np.memmap) for a in dm.datasets["test"].arrays)  # mapped, not read
    assert x.shape == (8, 1) and x.dtype == torch.float32 and y.shape == (8, 1)
    assert torch.allclose(y, 2 * x + 5)
    rows = np.concatenate([dm.datasets[s].rows for s in ("train", "val")])
    assert sorted(rows.tolist()) == list(range(80))  # disjoint, every row used
    again = arrays(line)
    again.setup()
    assert np.array_equal(again.datasets["val"].rows, dm.datasets["val"].rows)
    assert dm.describe_input() == {"shape": [1], "dtype": "float32", "normalisation": None}


def test_class_ids_and_workers(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(40, dtype=np.uint8).reshape(10, 2, 2))
    np.save(tmp_path / "y.npy", np.arange(10) % 2)
    dm = arrays(tmp_path, test_fraction=0.2, num_workers=2, class_names=["even", "odd"])
    batches = list(dm.train_dataloader())
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert torch.equal(y, x[:, 0, 0] // 4 % 2)  # every sample kept its label
    assert dm.describe_input()["class_names"] == ["even", "odd"]


@pytest.mark.parametrize("case", ["no file", "not npy", "lengths", "objects"])
def test_bad_arrays_are_one_line_naming_the_file(case, tmp_path):
    write_line(tmp_path, 10)
    x, y = tmp_path / "x.npy", tmp_path / "y.npy"
    if case == "no file":
        y.unlink()
        path, words = y, "no such file"
    elif case == "not npy":
        x.write_text("1,2,3")
        path, words = x, "not a readable .npy array"
    elif case == "lengths":
        np.save(y, np.zeros(9))
        path, words = x, "10 samples, but"
    else:
        np.save(x, np.array(["a"] * 10))
        path, words = x, "give an array of samples"
    with pytest.raises(LitlabError) as err:
        arrays(tmp_path, test_fraction=0.2).setup()
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)) and words in message


TINY = [
    "experiment=linear",
    "data=arrays",
    "trainer=cpu",
    "logger=none",
    "callbacks.figures=null",
    "data.folder=.",
    "data.val_fraction=0.25",
    "data.batch_size=8",
    "data.num_workers=0",
]


def test_train_predict_and_export(line, cfg_for, tmp_path):
    run = fit_and_test(cfg_for(*TINY, f"data.data_dir={line}", "trainer.max_epochs=40"))
    assert run.trainer.callback_metrics["test/loss"] < 0.5
    run_dir = Path(run.trainer.checkpoint_callback.dirpath).parent
    np.save(tmp_path / "in.npy", np.array([[0.0], [1.0]]))
    out = predict(
        compose_config(
            [f"ckpt_path={run_dir}", "trainer=cpu", f"input={tmp_path / 'in.npy'}"],
            output_dir=tmp_path / "predict",
            config_name="predict",
        )
    )
    predicted = [float(r.split(",")[1]) for r in out.read_text().splitlines()[1:]]
    assert np.allclose(predicted, [5.0, 7.0], atol=0.7)
    path = export_model(run_dir, "exported_program", tmp_path / "model.pt2")
    with torch.no_grad():
        exported = torch.export.load(path).module()(torch.tensor([[0.0], [1.0]]))
    assert torch.allclose(exported.flatten(), torch.tensor(predicted))
    assert json.loads(description(path).read_text())["input"]["shape"] == ["batch", 1]
    _, dm = litlab.load(run_dir, datamodule=True)
    assert isinstance(dm, ArrayDataModule)


@pytest.mark.slow
def test_a_resume_after_one_epoch_equals_the_uninterrupted_run(line, cfg_for):
    assert_resume_is_exact(cfg_for, *TINY, f"data.data_dir={line}", "data.num_workers=2")


@pytest.mark.slow
def test_ddp_cpu_trains_on_the_arrays(line, tmp_path):
    overrides = [a for a in TINY if not a.startswith("trainer=")]
    run_cli("litlab-train", *overrides, "trainer=ddp_cpu", f"data.data_dir={line}", cwd=tmp_path)
    (run_dir,) = (tmp_path / "logs" / "linear" / "runs").iterdir()
    assert final_metrics(run_dir)["test/loss"] < 20.0
