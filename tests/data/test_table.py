"""TableDataModule: CSV and Parquet rows, features and target by name, seeded splits, scaling
fitted on the training rows only; train, resume, predict and export; bad tables in one line."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import litlab
from litlab import LitlabError
from litlab.config import compose_config
from litlab.data import TableDataModule
from litlab.inference.export import description, export_model
from litlab.inference.inputs import read_input
from litlab.inference.predict import predict
from litlab.run import fit_and_test
from tests.conftest import assert_resume_is_exact, final_metrics, run_cli


def write_csv(path: Path, rows: list[list], header=("x", "noise", "y")) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows([list(header), *rows])
    return path


def line_rows(n: int, seed: int = 0) -> list[list]:
    """y = 2x + 5 on x in [0, 10], and a column the model is not given."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, n)
    return [
        [f"{a:.4f}", f"{b:.4f}", f"{2 * a + 5:.4f}"]
        for a, b in zip(x, rng.normal(size=n), strict=True)
    ]


@pytest.fixture(scope="module")
def line(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    write_csv(folder / "line.csv", line_rows(80))
    write_csv(folder / "line_test.csv", line_rows(20, seed=1))
    return folder


def table(folder: Path, **kwargs) -> TableDataModule:
    settings = {"features": ["x"], "target": "y", "task": "regression", "file": "line.csv"}
    settings |= {"val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8, "num_workers": 0}
    return TableDataModule(data_dir=str(folder), **{**settings, **kwargs})


def test_splits_are_seeded_and_scaling_is_fitted_on_the_training_rows_only(line):
    dm = table(line, features=["x", "noise"])
    dm.setup()
    assert {k: len(v) for k, v in dm.datasets.items()} == {"train": 40, "val": 20, "test": 20}
    train = dm.datasets["train"].x
    mean, std = dm.stats
    assert torch.allclose(mean, train.mean(0)) and torch.allclose(std, train.std(0, correction=0))
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (8, 2) and y.shape == (8, 1) and y.dtype == torch.float32
    assert torch.allclose(dm.on_after_batch_transfer((x, y), 0)[0], (x - mean) / std)
    assert dm.describe_input() == {
        "shape": [2],
        "dtype": "float32",
        "names": ["x", "noise"],
        "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
    }
    again = table(line, features=["x", "noise"])
    again.setup()
    assert torch.equal(again.datasets["val"].x, dm.datasets["val"].x)
    rows = torch.cat([d.x for d in dm.datasets.values()])
    assert len(set(map(tuple, rows.tolist()))) == 80  # disjoint, and every row used
    files = table(line, file={"train": "line.csv", "test": "line_test.csv"}, test_fraction=None)
    files.setup()
    assert [len(d) for d in files.datasets.values()] == [60, 20, 20]
    assert table(line, standardize=False).describe_input()["normalisation"] is None


def test_classes_are_named_by_the_target_values(tmp_path):
    write_csv(tmp_path / "t.csv", [[1, 2, "dog"], [3, 4, "cat"], [5, 6, "dog"], [7, 8, "cat"]])
    dm = table(tmp_path, file="t.csv", task="classification", features=["x", "noise"])
    dm.setup()
    assert dm.describe_input()["class_names"] == ["cat", "dog"]
    y = torch.cat([d.y for d in dm.datasets.values()])
    assert y.dtype == torch.int64 and sorted(y.tolist()) == [0, 0, 1, 1]
    numbers = [[1, 0, 10], [2, 0, 2], [3, 0, 10], [4, 0, 2]]
    write_csv(tmp_path / "n.csv", numbers)
    assert table(tmp_path, file="n.csv", task="classification").class_names == ["2", "10"]


@pytest.mark.slow  # importing pyarrow the first time costs ~10 s
def test_parquet_reads_as_csv_does(line, tmp_path):
    pa = pytest.importorskip("pyarrow")  # the [tables] extra
    import pyarrow.parquet as pq

    dm = table(line)
    dm.setup()
    x, y = dm.read_split(line / "line.csv")
    pq.write_table(pa.table({"x": x[:, 0].numpy(), "y": y[:, 0].numpy()}), tmp_path / "t.parquet")
    parquet = table(tmp_path, file="t.parquet")
    parquet.setup()
    assert torch.equal(parquet.datasets["train"].x, dm.datasets["train"].x)


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(LitlabError, match=r"needs pyarrow: pip install 'litlab\[tables\]'"):
        table(tmp_path, file="t.parquet").setup()


def test_predict_reads_the_feature_columns_by_name(line, tmp_path):
    dm = table(line)
    write_csv(tmp_path / "in.csv", [["a", 3.0, 0.5], ["b", 1.0, 0.25]], ("id", "x", "other"))
    inputs = read_input(tmp_path / "in.csv", dm)
    assert inputs.x.tolist() == [[3.0], [1.0]] and inputs.x.dtype == torch.float32


BAD = {  # a table with one fault -> the words its message must hold
    "missing column": "no column 'y' (it has x, noise, z)",
    "non-numeric cell": "row 4, column 'x': 'seven' is not a number",
    "empty cell": "row 6, column 'y': '' is not a number",
    "short row": "row 3 holds 2 cells, the header 3",
    "empty file": "an empty table",
    "header only": "an empty table",
    "no file": "no such file",
}


def bad_table(path: Path, case: str) -> None:
    rows, header = line_rows(8), ("x", "noise", "z" if case == "missing column" else "y")
    if case == "non-numeric cell":
        rows[3][0] = "seven"
    elif case == "empty cell":
        rows[5][2] = ""
    elif case == "short row":
        rows[2].pop()
    elif case == "header only":
        rows = []
    if case == "empty file":
        path.write_text("")
    elif case != "no file":
        write_csv(path, rows, header)


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_table_is_one_line_naming_the_file(case, tmp_path):
    bad_table(tmp_path / "line.csv", case)
    with pytest.raises(LitlabError) as err:
        table(tmp_path).setup()
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "line.csv"))
    assert BAD[case] in message


def test_a_missing_column_in_predict_input_names_the_file(line, tmp_path):
    bad = write_csv(tmp_path / "in.csv", [[1.0]], ("z",))
    with pytest.raises(LitlabError, match=f"^{bad}: no column 'x'"):
        read_input(bad, table(line))


def test_a_split_needs_a_file_or_a_fraction_not_both(line):
    with pytest.raises(LitlabError, match=r"data.file.val=None and data.val_fraction=None"):
        table(line, val_fraction=None).setup()
    with pytest.raises(LitlabError, match=r"data.file.test=line_test.csv and data.test_fraction"):
        table(line, file={"train": "line.csv", "test": "line_test.csv"}).setup()


TINY = [
    "experiment=linear",
    "data=table",
    "trainer=cpu",
    "logger=none",
    "callbacks.figures=null",
    "data.features=[x]",
    "data.target=y",
    "data.task=regression",
    "data.file=line.csv",
    "data.val_fraction=0.25",
    "data.test_fraction=0.25",
    "data.batch_size=8",
]


def test_train_predict_and_export(line, cfg_for, tmp_path):
    run = fit_and_test(cfg_for(*TINY, f"data.data_dir={line}", "trainer.max_epochs=30"))
    assert run.trainer.callback_metrics["test/loss"] < 1.0  # y = 2x + 5, x scaled on the device
    run_dir = Path(run.trainer.checkpoint_callback.dirpath).parent
    given = write_csv(tmp_path / "in.csv", [["a", 1.0], ["b", 4.0]], ("id", "x"))
    out = predict(
        compose_config(
            [f"ckpt_path={run_dir}", "trainer=cpu", f"input={given}"],
            output_dir=tmp_path / "predict",
            config_name="predict",
        )
    )
    predicted = [float(r.split(",")[1]) for r in out.read_text().splitlines()[1:]]
    assert np.allclose(predicted, [7.0, 13.0], atol=1.0)
    path = export_model(run_dir, "exported_program", tmp_path / "model.pt2")
    x = torch.tensor([[1.0], [4.0]])
    with torch.no_grad():
        assert torch.allclose(
            torch.export.load(path).module()(x).flatten(), torch.tensor(predicted)
        )
    info = json.loads(description(path).read_text())
    assert info["input"]["names"] == ["x"] and info["preprocessing"]["normalisation"]["std"]
    # The scaling comes back from the checkpoint, not from a training file changed since.
    trained = run.datamodule.stats
    changed = tmp_path / "changed"
    write_csv(changed / "line.csv", line_rows(80, seed=5))
    _, dm = litlab.load(run_dir, datamodule=True, data_dir=changed)
    assert all(torch.equal(a, b) for a, b in zip(dm.stats, trained, strict=True))
    assert not torch.equal(table(changed).stats[0], trained[0])


@pytest.mark.slow
def test_a_resume_after_one_epoch_equals_the_uninterrupted_run(line, cfg_for):
    assert_resume_is_exact(cfg_for, *TINY, f"data.data_dir={line}", "data.num_workers=2")


@pytest.mark.slow
def test_ddp_cpu_trains_on_the_table(line, tmp_path):
    overrides = [a for a in TINY if not a.startswith("trainer=")]
    run_cli("litlab-train", *overrides, "trainer=ddp_cpu", f"data.data_dir={line}", cwd=tmp_path)
    (run_dir,) = (tmp_path / "logs" / "linear" / "runs").iterdir()
    assert final_metrics(run_dir)["test/loss"] < 5.0


def test_classification_trains_on_class_names(tmp_path, cfg_for):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(120, 2))
    rows = [[a, b, "yes" if a + b > 0 else "no"] for a, b in points]
    write_csv(tmp_path / "points.csv", rows, ("a", "b", "label"))
    overrides = [o for o in TINY if not o.startswith(("experiment=", "data.task", "data.f"))]
    run = fit_and_test(
        cfg_for(
            "experiment=logistic",
            *overrides,
            f"data.data_dir={tmp_path}",
            "data.file=points.csv",
            "data.features=[a,b]",
            "data.target=label",
            "trainer.max_epochs=10",
        )
    )
    assert run.datamodule.describe_input()["class_names"] == ["no", "yes"]
    assert run.trainer.callback_metrics["test/acc"] >= 0.9
