"""litlab.load: the trained model (and its data) back from a run dir or checkpoint, in one call."""

from __future__ import annotations

import subprocess
import sys

import lightning as L
import pytest
import torch

import litlab
from litlab import LitlabError
from litlab.models import ImageClassifier
from litlab.run.checkpoints import KEY
from tests.fake_cuda import fake_cuda
from tests.inference.conftest import EXPERIMENTS, model_inputs


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_load_gives_the_trained_model_in_eval_mode(name, trained, mnist_root):
    run_dir = trained(name)
    model, datamodule = litlab.load(run_dir, datamodule=True, data_dir=mnist_root)
    assert not model.training and isinstance(datamodule, L.LightningDataModule)
    saved = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert type(model).__name__ == saved[KEY]["config"]["model"]["_target_"].rsplit(".", 1)[1]
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved["state_dict"][key]), key
    # The datamodule reads the run's own data: its test split, through the model, gives outputs.
    datamodule.prepare_data()
    datamodule.setup("test")
    x, _ = next(iter(datamodule.test_dataloader()))
    with torch.no_grad():
        out = model(model_inputs(datamodule, x))
    assert len(out) == len(x) and torch.isfinite(out).all()


def test_a_checkpoint_file_and_a_device(trained):
    ckpt = trained("logistic") / "checkpoints" / "last.ckpt"
    with fake_cuda() as gpu:
        model = litlab.load(ckpt, map_location="cuda:0")
        assert model.device.type == "cuda" and all(gpu.on_gpu(p) for p in model.parameters())
        with torch.no_grad():
            rows = model.prediction_columns(model(torch.randn(4, 2).cuda()))
        assert [v.cpu().numpy().shape for v in rows.values()] == [(4,)] * 3


def test_importing_litlab_stays_light():
    code = (
        "import sys, litlab\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules\n"
        "assert callable(litlab.load) and 'lightning' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_run_saved_with_compile_loads_uncompiled(trained, tmp_path):
    ckpt = torch.load(trained("mnist") / "checkpoints" / "best.ckpt", weights_only=True)
    ckpt[KEY]["config"]["model"]["compile"] = True
    torch.save(ckpt, tmp_path / "compiled.ckpt")
    model = litlab.load(tmp_path / "compiled.ckpt")
    assert getattr(model.net, "_compiled_call_impl", None) is None
    assert ImageClassifier(compile=True).net._compiled_call_impl is not None  # what is avoided


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"state_dict": {}}, "was not written by a litlab run"),
        ({"weights": torch.zeros(2)}, "not a Lightning checkpoint of a litlab run"),
        (None, "no such file or run directory"),
    ],
    ids=["lightning-not-litlab", "plain-dict", "missing"],
)
def test_checkpoints_that_are_not_litlabs_are_refused_in_one_line(content, message, tmp_path):
    path = tmp_path / "other.ckpt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(LitlabError, match=message):
        litlab.load(path)


def test_weights_that_do_not_fit_the_config(trained, tmp_path):
    ckpt = torch.load(trained("linear") / "checkpoints" / "best.ckpt", weights_only=True)
    ckpt[KEY]["config"]["model"]["degree"] = 3
    torch.save(ckpt, tmp_path / "changed.ckpt")
    with pytest.raises(LitlabError, match="do not fit the model"):
        litlab.load(tmp_path / "changed.ckpt")
