"""k-fold cross-validation: every data module holds out fold ``i`` of ``k`` from its training
data, seeded, stratified for classifiers, the test split untouched; a grid over the folds
reports their mean."""

from __future__ import annotations

import statistics
from collections import Counter

import numpy as np
import pytest

from litlab import LitlabError
from litlab.config import check_config
from litlab.data import (
    ArrayDataModule,
    BlobsDataModule,
    ImageFolderDataModule,
    LinearDataModule,
    MNISTDataModule,
    TableDataModule,
)
from litlab.data.arrays import MappedArrays
from litlab.data.folder import ImageFiles
from litlab.run.fit import plan
from tests.conftest import final_metrics, run_cli
from tests.data.test_arrays import TINY as ARRAYS
from tests.data.test_arrays import write_line
from tests.data.test_folder import TINY as FOLDER
from tests.data.test_folder import write_folders
from tests.data.test_table import TINY as TABLE
from tests.data.test_table import line_rows, write_csv
from tests.sweep.conftest import QUIET, read_csv

K = 3
LINE = {"features": ["x"], "target": "y", "task": "regression", "file": "line.csv"}


def rows(x) -> list[bytes]:
    """Samples as sortable bytes: equal lists mean the same samples, as many times each."""
    return sorted(bytes(np.ascontiguousarray(r)) for r in np.asarray(x).reshape(len(x), -1))


def tensors(dm) -> dict[str, tuple[list[bytes], list]]:
    dm.setup()
    return {s: (rows(x), y.reshape(len(y), -1)[:, 0].tolist()) for s, (x, y) in dm.splits.items()}


def on_disk(dm) -> dict[str, tuple[list, list]]:
    dm.setup()
    found = {}
    for split, data in dm.datasets.items():
        if isinstance(data, ImageFiles):  # the paths are the samples
            found[split] = (sorted(map(str, data.files)), data.labels.tolist())
        elif isinstance(data, MappedArrays):  # row numbers of one file
            found[split] = (sorted(data.rows.tolist()), np.load(data.paths[1])[data.rows].tolist())
        else:  # table rows
            found[split] = (rows(data.x.numpy()), data.y[:, 0].tolist())
    return found


@pytest.fixture(scope="module")
def files(tmp_path_factory, mnist_root):
    root = tmp_path_factory.mktemp("folds")
    write_folders(root / "images", splits=(("train", 10), ("test", 3)))
    write_csv(root / "line.csv", line_rows(40))
    write_line(root / "arrays", 40)
    np.save(root / "arrays" / "y.npy", np.arange(40) % 2)  # class ids: the folds stratify
    return root, mnist_root


def modules(name: str, files, fold: int):
    root, mnist = files
    folds = {"fold": fold, "num_folds": K, "seed": 3}
    disk = {"batch_size": 4, "num_workers": 0}
    if name == "blobs":
        return tensors(BlobsDataModule(num_samples=30, num_test=7, **folds)), True
    if name == "linear":
        return tensors(LinearDataModule(num_samples=31, num_test=7, **folds)), False
    if name == "mnist":
        return tensors(MNISTDataModule(str(mnist), download=False, **folds)), True
    if name == "folder":
        dm = ImageFolderDataModule(str(root / "images"), folder=".", channels=1, **disk, **folds)
        return on_disk(dm), True
    if name == "table":
        dm = TableDataModule(**LINE, data_dir=str(root), test_fraction=0.25, **disk, **folds)
        return on_disk(dm), False
    dm = ArrayDataModule(str(root), folder="arrays", test_fraction=0.25, **disk, **folds)
    return on_disk(dm), True


@pytest.mark.parametrize("name", ["blobs", "linear", "mnist", "folder", "table", "arrays"])
def test_folds_partition_the_training_data_and_leave_test_alone(name, files):
    runs = [modules(name, files, fold) for fold in range(K)]
    (first, classify), pool = runs[0], sorted(runs[0][0]["train"][0] + runs[0][0]["val"][0])
    held = []
    for splits, _ in runs:
        assert sorted(splits["train"][0] + splits["val"][0]) == pool  # disjoint, all of it
        assert splits["test"] == first["test"]  # untouched by the fold
        held += splits["val"][0]
    assert sorted(held) == pool  # the k val folds cover the training data once
    if classify:  # stratified: each fold holds each class's share, to within one sample
        total = Counter(first["train"][1] + first["val"][1])
        for splits, _ in runs:
            shares = Counter(splits["val"][1])
            assert all(abs(shares[c] - n / K) < 1 for c, n in total.items()), shares
    again, _ = modules(name, files, 1)
    assert again == runs[1][0]  # seeded


def test_a_bad_fold_is_one_line(cfg_for):
    with pytest.raises(LitlabError, match=r"data.fold=3 with data.num_folds=3: the folds are 0 to"):
        plan(cfg_for("experiment=logistic", "data.fold=3", "data.num_folds=3"))
    with pytest.raises(LitlabError, match=r"data.fold=1 and data.num_folds=None: give both"):
        plan(cfg_for("experiment=logistic", "data.fold=1"))


BAD = ["val_fraction=1.0", "val_fraction=0", "test_fraction=-0.1", "test_fraction=0"]


@pytest.mark.parametrize("option", [ARRAYS, TABLE, FOLDER], ids=["arrays", "table", "folder"])
@pytest.mark.parametrize("key", [*BAD, "num_workers=-1"])
def test_a_split_fraction_outside_0_1_or_a_bad_loader_setting_is_one_line(option, key, cfg_for):
    cfg = cfg_for(*option, f"data.{key}")  # checked before any file is read
    with pytest.raises(LitlabError, match=f"data.{key.split('=')[0]}") as err:
        check_config(cfg)
    assert "\n" not in str(err.value)


def test_a_val_split_of_its_own_is_refused_with_folds(files):
    root, _ = files
    both = {"val_fraction": 0.2, "test_fraction": 0.2, "fold": 0, "num_folds": K}
    with pytest.raises(LitlabError, match=r"data.num_folds=3 holds out val .* data.val_fraction"):
        TableDataModule(**LINE, data_dir=str(root), num_workers=0, **both).setup()


@pytest.mark.slow
def test_a_grid_over_the_folds_reports_their_mean(tmp_path, monkeypatch):
    workdir = tmp_path
    monkeypatch.chdir(workdir)
    run_cli(
        "litlab-train",
        "-m",
        "experiment=logistic",
        "trainer.max_epochs=2",
        "logger=csv",
        "callbacks.figures=null",
        "data.fold=range(3)",
        "data.num_folds=3",
        *QUIET,
        cwd=workdir,
    )
    (sweep,) = (workdir / "logs" / "logistic" / "multiruns").iterdir()
    jobs = [final_metrics(sweep / str(i))["val/loss"] for i in range(3)]
    assert len(set(jobs)) == 3  # three different validation folds
    (row,) = read_csv(sweep / "results_by_config.csv")
    assert row["runs"] == "3" and row["complete"] == "3"
    assert float(row["val/loss mean"]) == pytest.approx(statistics.fmean(jobs))
    assert float(row["val/loss std"]) == pytest.approx(statistics.stdev(jobs))
    assert "over folds 0,1,2" in (sweep / "results.md").read_text()
