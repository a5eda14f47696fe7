"""GPU device rules, checked on a CPU: every task's pictures and predictions with the data and the
model on a (stand-in) ``cuda:0``, as ``TensorDataModule.setup`` and Lightning place them there.

A missing ``.cpu()`` before numpy, or a CPU tensor mixed into GPU math, raises here just as it
does on a real GPU (see ``tests/fake_cuda.py``); the real-GPU versions are in ``test_gpu.py``.
"""

from functools import partial
from io import BytesIO

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from litlab.config import to_plain
from litlab.models import ImageClassifier
from litlab.models.optim import build_optimizer
from litlab.run.build import build_all
from litlab.tracking import plots
from tests.conftest import SMALL_MNIST
from tests.fake_cuda import fake_cuda

TASKS = {
    "linear": ["experiment=linear"],
    "sine": ["experiment=sine"],
    "logistic": ["experiment=logistic"],
    "mlp_classifier": ["experiment=logistic", "model=mlp_classifier"],
    "mnist": ["experiment=mnist", *SMALL_MNIST],
    "mnist_seed": ["experiment=mnist_seed", *SMALL_MNIST],
}


def test_the_stand_in_gpu_raises_where_cuda_does():
    with fake_cuda() as gpu:
        y = torch.tensor([1, 2, 3]).to("cuda:0")
        pred = torch.tensor([1, 2, 2])
        assert y.device == torch.device("cuda:0") and gpu.on_gpu(y[1:])
        with pytest.raises(RuntimeError, match="same device"):
            torch.bincount(y * 10 + pred)  # the crash of the MNIST figures at 565d138
        with pytest.raises(TypeError, match="can't convert cuda:0"):
            np.asarray(y)  # the crash of the plots at 565d138
        assert (y + torch.tensor(1)).device.type == "cuda"  # 0-dim CPU tensors may mix
        assert not gpu.on_gpu(y.cpu()) and np.asarray(y.cpu()).tolist() == [1, 2, 3]


@pytest.mark.parametrize("task", TASKS)
def test_figures_and_predictions_from_gpu_data_and_model(task, cfg_for):
    cfg = cfg_for(*TASKS[task], "trainer=cpu", "logger=none")
    datamodule, model, _ = build_all(cfg, to_plain(cfg))
    datamodule.prepare_data()
    datamodule.setup()
    with fake_cuda() as gpu:
        model.to("cuda:0")
        # What setup() does when the trainer's root device is a GPU.
        datamodule.splits = {k: (x.cuda(), y.cuda()) for k, (x, y) in datamodule.splits.items()}
        assert model.device.type == "cuda" and gpu.on_gpu(datamodule.splits["test"][0])

        figures = model.figures(datamodule)
        assert figures, f"{task} draws no picture"
        for fig in figures.values():
            png = BytesIO()
            fig.savefig(png, format="png")
            assert png.tell() > 1000

        x, y, out = model.predict_split(datamodule, "test")
        assert not any(gpu.on_gpu(t) for t in (x, y, out))
        assert len(out) == len(y) == len(datamodule.splits["test"][1])


def test_plots_take_gpu_and_half_precision_tensors():
    with fake_cuda():
        x = torch.linspace(0, 1, 50)[:, None].cuda()
        fig = plots.regression_fit(x, x.bfloat16(), x, x.half(), "fit")
        images = torch.zeros(4, 28, 28, dtype=torch.uint8).cuda()
        labels = torch.tensor([1, 2, 3, 4]).cuda()
        grid = plots.digit_grid(images, labels, labels, "digits")
        colour = plots.image_grid(torch.rand(4, 3, 40, 30).cuda(), labels, labels, "colour")
        matrix = plots.confusion_matrix(torch.eye(3, dtype=torch.long).cuda(), "cm")
        for f in (fig, grid, colour, matrix):
            f.savefig(BytesIO(), format="png")


class PlainImages(L.LightningDataModule):
    """Not a TensorDataModule: a torch DataLoader on the CPU, as most LightningDataModules."""

    def test_dataloader(self):
        x = torch.randint(0, 256, (30, 1, 16, 16), dtype=torch.uint8)
        return DataLoader(TensorDataset(x, torch.arange(30) % 4), batch_size=8)

    def on_after_batch_transfer(self, batch, dataloader_idx):
        x, y = batch
        return x.float() / 255, y


def test_figures_of_a_plain_datamodule_with_the_model_on_the_gpu():
    model = ImageClassifier(channels=[4], stem=0, image_size=16, num_classes=4)
    with fake_cuda() as gpu:
        model.to("cuda:0")
        x, y, out = model.predict_split(PlainImages())
        assert not any(gpu.on_gpu(t) for t in (x, y, out)) and x.dtype == torch.uint8
        for fig in model.figures(PlainImages()).values():
            fig.savefig(BytesIO(), format="png")


def test_data_copied_to_the_gpu_comes_back_when_the_run_ends(cfg_for):
    cfg = cfg_for("experiment=linear", "trainer=cpu", "logger=none")
    datamodule, _, _ = build_all(cfg, to_plain(cfg))
    datamodule.setup()
    with fake_cuda() as gpu:
        datamodule.splits = {k: (x.cuda(), y.cuda()) for k, (x, y) in datamodule.splits.items()}
        datamodule.teardown("fit")  # Lightning calls it after fit and after test
        x, y = datamodule.splits["train"]
        assert not gpu.on_gpu(x) and not gpu.on_gpu(y)
        np.asarray(x)


def test_optimizers_take_the_fused_kernel_on_a_gpu_unless_told_otherwise():
    adamw = partial(torch.optim.AdamW, lr=0.01)
    net = torch.nn.Linear(3, 2)
    assert not build_optimizer(adamw, net.parameters()).defaults["fused"]  # CPU: as configured
    with fake_cuda():
        net.to("cuda:0")
        assert build_optimizer(adamw, net.parameters()).defaults["fused"] is True
        chosen = partial(torch.optim.AdamW, lr=0.01, fused=False)
        assert build_optimizer(chosen, net.parameters()).defaults["fused"] is False
        rms = partial(torch.optim.RMSprop, lr=0.01)  # no fused kernel: left alone
        assert not build_optimizer(rms, net.parameters()).defaults.get("fused")
