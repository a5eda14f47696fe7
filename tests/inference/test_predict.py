"""litlab-predict: one file of predictions, equal to ``litlab.load(...)(x)`` on the same inputs,
for the test split and for the user's own CSV, .npy, IDX and image files; on DDP ranks too."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import litlab
from lessons.data import write_idx
from litlab import LitlabError
from litlab.config import compose_config
from litlab.data import MNISTDataModule
from litlab.inference.inputs import read_input
from litlab.inference.predict import predict
from litlab.inference.writer import PredictionWriter, write_csv
from tests.conftest import fake_digits, help_without_torch, run_cli
from tests.fake_cuda import fake_cuda
from tests.inference.conftest import EXPERIMENTS, model_inputs

MNIST = MNISTDataModule(download=False)  # reads no data: it says how images are prepared


def predict_cfg(tmp_path: Path, run_dir: Path, *overrides: str):
    return compose_config(
        [f"ckpt_path={run_dir}", "trainer=cpu", "+trainer.enable_progress_bar=false", *overrides],
        output_dir=tmp_path / "predict",
        config_name="predict",
    )


def read_csv(path: Path) -> dict[str, list[str]]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [r[k] for r in rows] for k in rows[0]}


def expected_rows(run_dir: Path, x: torch.Tensor, data_dir: Path) -> dict[str, torch.Tensor]:
    model, datamodule = litlab.load(run_dir, datamodule=True, data_dir=data_dir)
    with torch.no_grad():
        return model.prediction_columns(model(model_inputs(datamodule, x)))


def assert_same_rows(written: dict[str, list[str]], expected: dict[str, torch.Tensor]) -> None:
    for key, values in expected.items():
        got = torch.tensor([float(v) for v in written[key]])
        if values.dtype == torch.long:  # the predicted class: exactly the same
            assert got.long().tolist() == values.tolist(), key
        else:
            torch.testing.assert_close(got, values.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_test_split_by_default(name, trained, mnist_root, tmp_path, capsys):
    run_dir = trained(name)
    out = predict(predict_cfg(tmp_path, run_dir, f"data_dir={mnist_root}", "batch_size=128"))
    assert out == tmp_path / "predict" / "predictions.csv"
    assert f"predictions written to {out}" in capsys.readouterr().out
    written = read_csv(out)
    _, datamodule = litlab.load(run_dir, datamodule=True, data_dir=mnist_root)
    datamodule.prepare_data()
    datamodule.setup("test")
    x, y = (torch.cat(t) for t in zip(*datamodule.test_dataloader(), strict=True))
    assert written["id"] == [str(i) for i in range(len(x))]
    truth = "label" if name in ("logistic", "mnist") else "target"
    torch.testing.assert_close(
        torch.tensor([float(v) for v in written[truth]]), y.float().flatten()
    )
    expected = expected_rows(run_dir, x, mnist_root)
    assert_same_rows(written, expected)
    probs = [k for k in written if k.startswith("prob_")]
    assert len(probs) == {"mnist": 10, "logistic": 2}.get(name, 0)
    if probs:
        total = np.array([[float(v) for v in written[k]] for k in probs]).sum(0)
        np.testing.assert_allclose(total, 1, rtol=1e-5)


def write_csv_rows(path: Path, header: str, rows: np.ndarray) -> Path:
    np.savetxt(path, rows, delimiter=",", header=header, comments="")
    return path


@pytest.mark.parametrize(
    ("name", "suffix"), [("linear", ".csv"), ("sine", ".npy"), ("logistic", ".csv")]
)
def test_rows_of_x_values(name, suffix, trained, tmp_path):
    run_dir = trained(name)
    width = 2 if name == "logistic" else 1
    x = np.random.default_rng(0).uniform(-3, 3, size=(37, width))
    if suffix == ".csv":
        path = write_csv_rows(tmp_path / "x.csv", ",".join(f"x{i}" for i in range(width)), x)
    else:
        np.save(tmp_path / "x.npy", x[:, 0])  # a plain list of x values works too
        path = tmp_path / "x.npy"
    out = predict(predict_cfg(tmp_path, run_dir, f"input={path}", "batch_size=10"))
    written = read_csv(out)
    assert written["id"] == [str(i) for i in range(37)] and "label" not in written
    assert_same_rows(written, expected_rows(run_dir, torch.tensor(x, dtype=torch.float32), None))


def save_digit(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def clean_digit() -> np.ndarray:
    """An MNIST-like image: a white 20x8 bar, centred."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 10:18] = 255
    return image


def test_a_folder_of_images_is_read_the_way_mnist_was_made(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    digit = clean_digit()
    save_digit(folder / "a_as_mnist.png", digit)
    big = np.kron(255 - digit, np.ones((5, 5), dtype=np.uint8))  # dark ink on paper, 140x140
    save_digit(folder / "b_large_inverted.png", big)
    rgb = np.stack([np.pad(digit, 10)] * 3, -1)  # off-centre on a larger canvas, as JPEG
    Image.fromarray(rgb).save(folder / "c_colour.JPG", quality=95)
    ink = np.zeros((84, 84, 4), dtype=np.uint8)  # black ink on a transparent background
    ink[..., 3] = np.kron(digit, np.ones((3, 3), dtype=np.uint8))
    Image.fromarray(ink).save(folder / "d_transparent.png")  # RGBA
    (folder / "notes.txt").write_text("not an image")
    inputs = read_input(folder, MNIST)
    names = ["a_as_mnist.png", "b_large_inverted.png", "c_colour.JPG", "d_transparent.png"]
    assert inputs.ids == names
    assert inputs.x.dtype == torch.uint8 and inputs.x.shape == (4, 28, 28)
    assert torch.equal(inputs.x[0], torch.from_numpy(digit))  # already MNIST's form: unchanged
    one = read_input(folder / "a_as_mnist.png", MNIST)
    assert one.ids == ["a_as_mnist.png"] and torch.equal(one.x, inputs.x[:1])
    for other in inputs.x[1:]:  # same digit after inversion, resizing, cropping, centring
        differ = (other.float() - torch.from_numpy(digit).float()).abs() > 64
        assert differ.float().mean() < 0.03


@pytest.mark.parametrize("kind", ["folder", "idx", "npy"])
def test_mnist_inputs(kind, trained, tmp_path, mnist_root):
    run_dir = trained("mnist")
    x = fake_digits(3, seed=7)[0].to(torch.uint8)
    if kind == "folder":
        path = tmp_path / "digits"
        path.mkdir()
        for i, image in enumerate(x.numpy()):
            save_digit(path / f"{i}.png", np.kron(image, np.ones((2, 2), dtype=np.uint8)))
    elif kind == "idx":
        write_idx(path := tmp_path / "digits-idx3-ubyte", x)
    else:
        np.save(path := tmp_path / "digits.npy", x.numpy()[:, None])  # (n, 1, 28, 28)
    out = predict(
        predict_cfg(tmp_path, run_dir, f"input={path}", "output=${hydra:runtime.output_dir}/p.npy")
    )
    assert out.suffix == ".npy"
    table = np.load(out, allow_pickle=False)
    inputs = read_input(path, MNIST)
    if kind != "folder":
        assert torch.equal(inputs.x, x)
    expected = expected_rows(run_dir, inputs.x, mnist_root)
    assert list(table["id"]) == inputs.ids
    assert table["prediction"].tolist() == expected["prediction"].tolist()
    for k in range(10):
        np.testing.assert_allclose(table[f"prob_{k}"], expected[f"prob_{k}"], rtol=1e-5, atol=1e-6)


def test_the_writer_takes_rows_from_a_gpu(tmp_path):
    writer = PredictionWriter(
        tmp_path / "p.csv", ids=["a", "b", "c"], labels=torch.tensor([1, 0, 1])
    )
    with fake_cuda() as gpu:
        index = torch.tensor([2, 0, 1]).cuda()
        rows = {"prediction": torch.tensor([1, 1, 0]).cuda(), "prob_1": torch.rand(3).cuda()}
        assert gpu.on_gpu(rows["prob_1"])
        writer.write_on_batch_end(None, None, rows, None, (index, index), 0)
        table = writer.table({k: torch.cat([p[k] for p in writer.parts]) for k in writer.parts[0]})
        write_csv(tmp_path / "p.csv", table)
    written = read_csv(tmp_path / "p.csv")
    assert written["id"] == ["a", "b", "c"] and written["label"] == ["1", "0", "1"]
    assert written["prediction"] == ["1", "0", "1"]  # sorted back into input order


def bad_png(folder: Path) -> Path:
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def blank_png(folder: Path) -> Path:
    folder.mkdir()
    return save_digit(folder / "blank.png", np.full((30, 30), 200, dtype=np.uint8)).parent


BAD_INPUTS = {
    "wrong-width-csv": (
        "linear",
        lambda d: write_csv_rows(d / "x.csv", "a,b,c", np.ones((4, 3))),
        "takes 1 values each \\(x\\)",
    ),
    "text-csv": (
        "linear",
        lambda d: (d / "x.csv").write_text("x\nhello\n") and d / "x.csv",
        "not a CSV of numbers",
    ),
    "nan": (
        "logistic",
        lambda d: np.save(d / "x.npy", np.array([[0.0, np.nan]])) or d / "x.npy",
        "sample 0 holds NaN",
    ),
    "empty-csv": (
        "linear",
        lambda d: (d / "x.csv").write_text("x\n") and d / "x.csv",
        "holds no samples",
    ),
    "wrong-image-size": (
        "mnist",
        lambda d: np.save(d / "x.npy", np.zeros((2, 32, 32), np.uint8)) or d / "x.npy",
        "shape 32x32, but this model takes 28x28 images",
    ),
    "unit-range-pixels": (
        "mnist",
        lambda d: np.save(d / "x.npy", np.full((2, 28, 28), 0.5)) or d / "x.npy",
        "multiply by 255",
    ),
    "unreadable-image": (
        "mnist",
        lambda d: bad_png(d / "imgs"),
        "broken.png: not a readable image",
    ),
    "blank-image": ("mnist", lambda d: blank_png(d / "imgs"), "blank.png: no digit in it"),
    "empty-folder": (
        "mnist",
        lambda d: (d / "imgs").mkdir() or d / "imgs",
        "no PNG or JPEG images",
    ),
    "not-idx": (
        "mnist",
        lambda d: (d / "x.idx").write_bytes(b"\x00\x00\x08\x09xx") and d / "x.idx",
        "not an IDX file",
    ),
    "csv-for-images": (
        "mnist",
        lambda d: write_csv_rows(d / "x.csv", "x", np.ones((2, 1))),
        "reads PNG/JPEG images \\(a folder or one\\)",
    ),
    "folder-for-rows": (
        "linear",
        lambda d: (d / "imgs").mkdir() or d / "imgs",
        "reads a .csv or .npy",
    ),
    "missing": ("linear", lambda d: d / "nothing.csv", "no such file or folder"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_stops_with_one_clear_line(case, trained, tmp_path):
    name, make, message = BAD_INPUTS[case]
    run_dir = trained(name)
    path = make(tmp_path)
    with pytest.raises(LitlabError, match=message) as err:
        predict(predict_cfg(tmp_path, run_dir, f"input={path}"))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "predict" / "predictions.csv").exists()


def test_bad_output_and_checkpoint(trained, tmp_path):
    with pytest.raises(LitlabError, match="writes .csv or .npy"):
        predict(predict_cfg(tmp_path, trained("linear"), f"output={tmp_path}/p.xlsx"))
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(LitlabError, match="not written by a litlab run"):
        predict(predict_cfg(tmp_path, tmp_path / "foreign.ckpt"))


def test_the_command_images_help_and_errors(trained, tmp_path):
    run_dir = trained("mnist")
    folder = tmp_path / "digits"
    folder.mkdir()
    for i, image in enumerate(fake_digits(3, seed=3)[0].to(torch.uint8).numpy()):
        save_digit(folder / f"digit{i}.png", image)
    proc = run_cli(
        "litlab-predict",
        f"ckpt_path={run_dir}",
        f"input={folder}",
        "output=out.csv",
        "trainer=cpu",
        cwd=tmp_path,
    )
    assert "3 predictions written to out.csv" in proc.stdout
    assert read_csv(tmp_path / "out.csv")["id"] == ["digit0.png", "digit1.png", "digit2.png"]
    proc = run_cli("litlab-predict", "--help", cwd=tmp_path)
    assert "input=" in proc.stdout and "ddp_cpu" in proc.stdout
    proc = run_cli(
        "litlab-predict",
        f"ckpt_path={run_dir}",
        f"input={tmp_path}/none",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"litlab: error: input={tmp_path}/none: no such file or folder."
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ddp_ranks_write_one_file_in_input_order(trained, tmp_path):
    run_dir = trained("logistic")
    x = np.random.default_rng(1).normal(size=(101, 2))
    path = write_csv_rows(tmp_path / "x.csv", "x1,x2", x)
    run_cli(
        "litlab-predict",
        f"ckpt_path={run_dir}",
        f"input={path}",
        "output=ddp.csv",
        "trainer=ddp_cpu",
        "batch_size=16",
        cwd=tmp_path,
    )
    written = read_csv(tmp_path / "ddp.csv")
    assert written["id"] == [str(i) for i in range(101)]
    assert_same_rows(written, expected_rows(run_dir, torch.tensor(x, dtype=torch.float32), None))
    assert not list(tmp_path.glob(".ddp.csv.parts"))
    assert not (tmp_path / "logs" / "predict").exists()  # no run dir of Hydra's files and logs


@pytest.mark.parametrize("tool", ["predict", "export"])
def test_help_answers_without_loading_torch(tool, tmp_path):
    out = help_without_torch(f"litlab-{tool}", f"litlab.cli.{tool}", tmp_path)
    assert f"usage: litlab-{tool} ckpt_path=" in out
