"""litlab-export: each format loads back (ONNX through onnxruntime) and gives the PyTorch model's
answers on real inputs: max abs difference <= 1e-5 in fp32, the same argmax on 3,000 digits."""

from __future__ import annotations

import json
import sys

import numpy as np
import onnxruntime
import pytest
import torch

import litlab
from litlab.inference.export import SUFFIXES, description, export_model
from tests.conftest import fake_digits, run_cli
from tests.inference.conftest import EXPERIMENTS, model_inputs


def run_export(path, x: torch.Tensor, fmt: str) -> np.ndarray:
    """The exported model at ``path``, loaded back the way a user would, run on ``x``."""
    if fmt == "onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x.numpy()})[0]
    module = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(path).module()
    with torch.no_grad():
        return module(x).numpy()


def reference(run_dir, x: torch.Tensor) -> np.ndarray:
    model, datamodule = litlab.load(run_dir, datamodule=True)
    with torch.no_grad():
        return model(model_inputs(datamodule, x)).numpy()


@pytest.mark.parametrize("fmt", SUFFIXES)
def test_mnist_exports_match_pytorch_on_3000_digits(fmt, trained, tmp_path):
    run_dir = trained("mnist")
    path = export_model(run_dir, fmt, tmp_path / f"model{SUFFIXES[fmt]}")
    x = fake_digits(3000, seed=11)[0].to(torch.uint8)  # raw pixels: preprocessing is built in
    ours, theirs = reference(run_dir, x), run_export(path, x, fmt)
    diff = float(np.abs(ours - theirs).max())
    print(f"{fmt}: max abs difference {diff:.3g} on {len(x)} digits")
    assert theirs.dtype == np.float32 and theirs.shape == (3000, 10)
    assert diff <= 1e-5
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    info = json.loads(description(path).read_text())
    assert info["input"] | {"image": None} == {
        "name": "x",
        "shape": ["batch", 28, 28],
        "dtype": "uint8",
        "image": None,
    }
    assert info["preprocessing"]["included"] is True
    assert info["preprocessing"]["normalisation"] == {
        "scale": 1 / 255,
        "mean": [0.1307],
        "std": [0.3081],
    }
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["output"]["shape"] == ["batch", 10] and info["file"] == path.name


@pytest.mark.parametrize("fmt", SUFFIXES)
@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n != "mnist"])
def test_every_experiment_round_trips(name, fmt, trained, tmp_path):
    run_dir = trained(name)
    path = export_model(run_dir, fmt, tmp_path / f"model{SUFFIXES[fmt]}")
    x = torch.linspace(-4, 4, 2 * 500).reshape(500, 2)[:, : 2 if name == "logistic" else 1]
    ours, theirs = reference(run_dir, x), run_export(path, x, fmt)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
    info = json.loads(description(path).read_text())
    assert info["input"]["shape"] == ["batch", x.shape[1]] and info["input"]["dtype"] == "float32"
    assert info["class_names"] == (["0", "1"] if name == "logistic" else None)


def test_the_command(trained, tmp_path):
    run_dir = trained("logistic")
    proc = run_cli("litlab-export", f"ckpt_path={run_dir}", "format=exported_program", cwd=tmp_path)
    (path,) = (tmp_path / "logs" / "export" / "runs").glob("*/model.pt2")
    assert f"exported to {path}" in proc.stdout and description(path).is_file()
    proc = run_cli(
        "litlab-export", f"ckpt_path={run_dir}", "format=tflite", cwd=tmp_path, check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "litlab: error: format=tflite: litlab exports onnx, torchscript, exported_program."
    )
    assert "format=" in run_cli("litlab-export", "--help", cwd=tmp_path).stdout


def test_each_export_keeps_its_own_description(trained, tmp_path):
    """Issue 21 item 4: output=x.json got the description written over the model, and exports
    sharing a stem (m.onnx, m.pt2) shared one m.json, the last one written."""
    run_dir = trained("logistic")
    over = export_model(run_dir, "exported_program", tmp_path / "x.json")
    assert torch.export.load(over).module() is not None  # the model, not the description
    assert json.loads(description(over).read_text())["file"] == "x.json"
    for fmt in ("exported_program", "torchscript"):
        export_model(run_dir, fmt, tmp_path / f"m{SUFFIXES[fmt]}")
    for fmt in ("exported_program", "torchscript"):
        path = tmp_path / f"m{SUFFIXES[fmt]}"
        assert json.loads(description(path).read_text())["format"] == fmt


def test_the_default_format_without_the_onnx_extra_is_one_line(trained, tmp_path, monkeypatch):
    """Issue 21 item 13: a plain `pip install litlab` has no onnxscript, which the default
    format needs; the command names the extra in one line and leaves no run dir."""
    from litlab.cli.export import USAGE, main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITLAB_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if it were not installed
    monkeypatch.setattr(sys, "argv", ["litlab-export", f"ckpt_path={trained('linear')}"])
    with pytest.raises(SystemExit) as end:
        main()
    assert (
        end.value.code == "litlab: error: format=onnx needs onnxscript: pip install 'litlab[onnx]'"
    )
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert "pip install 'litlab[onnx]'" in USAGE
