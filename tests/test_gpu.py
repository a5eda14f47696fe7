"""On a real NVIDIA GPU: bf16, data resident on the device, figures from GPU tensors, eval,
resume, one-GPU DDP and torch.compile. Each skips itself without CUDA; ``make test-gpu`` runs
just these. The device rules they rest on are also checked on CPUs, in ``test_devices.py``.
"""

import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf

from litlab.config import compose_config
from litlab.run import evaluate, fit_and_test
from tests.conftest import SMALL_MNIST, final_metrics, run_cli, run_dirs

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
QUIET = ["callbacks.progress_bar.refresh_rate=0"]


class WhereIsTheData(Callback):
    """Records the device of the training split and of the model while training runs."""

    def on_train_start(self, trainer, pl_module):
        self.data = trainer.datamodule.splits["train"][0].device
        self.model = pl_module.device
        self.precision = trainer.precision


def manifest(run_dir) -> dict:
    return json.loads((run_dir / "run.json").read_text())


@pytest.fixture
def workdir(tmp_path, mnist_root, monkeypatch):
    monkeypatch.setenv("LITLAB_DATA_DIR", str(mnist_root))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return tmp_path


def test_default_mnist_run_on_the_gpu_in_bf16_with_figures(cfg_for, tmp_path):
    where = WhereIsTheData()
    run = fit_and_test(cfg_for(*SMALL_MNIST, "trainer.max_epochs=3"), callbacks=[where])
    assert where.data.type == "cuda" and where.model.type == "cuda"
    assert where.precision == ("bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed")
    assert run.metrics["test/acc"] > 0.9
    pictures = sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png"))
    assert pictures == ["confusion_matrix.png", "misclassified.png"]
    m = manifest(tmp_path / "run")
    assert m["status"] == "finished" and m["hardware"]["accelerator"].lower().startswith("cuda")
    # What a finished run hands back is on the CPU, like the model Lightning returns there.
    assert run.datamodule.splits["test"][0].device.type == "cpu"
    assert run.model.device.type == "cpu"


@pytest.mark.parametrize("experiment", ["linear", "sine", "logistic"])
def test_every_task_draws_its_figures_on_the_gpu(cfg_for, tmp_path, experiment):
    run = fit_and_test(cfg_for(f"experiment={experiment}", "trainer=gpu", "trainer.max_epochs=3"))
    assert list((tmp_path / "run" / "figures").glob("*.png"))
    assert manifest(tmp_path / "run")["status"] == "finished"
    assert run.metrics["test/loss"] == run.metrics["test/loss"]  # not NaN


def test_compiled_model_trains_and_draws(cfg_for, tmp_path):
    run = fit_and_test(cfg_for(*SMALL_MNIST, "trainer=gpu", "model.compile=true"))
    assert run.metrics["test/acc"] > 0.9
    assert (tmp_path / "run" / "figures" / "confusion_matrix.png").is_file()


def test_eval_and_resume_on_the_gpu(cfg_for, tmp_path):
    first = fit_and_test(cfg_for("experiment=logistic", "trainer=gpu", "trainer.max_epochs=2"))
    run_dir = tmp_path / "run"
    metrics = evaluate(
        compose_config(
            [f"ckpt_path={run_dir}", "trainer=gpu"], tmp_path / "eval", config_name="eval"
        )
    )
    assert metrics["test/acc"] == pytest.approx(first.metrics["test/acc"], abs=2e-3)
    resumed = fit_and_test(
        cfg_for(
            "experiment=logistic", "trainer=gpu", "trainer.max_epochs=4", f"ckpt_path={run_dir}"
        )
    )
    assert resumed.trainer.current_epoch == 4
    assert resumed.metrics["test/acc"] > 0.95


def test_cli_default_run_and_one_gpu_ddp(workdir):
    """`make train` as a user runs it (accelerator auto), and `trainer=ddp` on one GPU."""
    run_cli("litlab-train", *SMALL_MNIST, *QUIET, cwd=workdir)
    (run_dir,) = run_dirs(workdir, "mnist")
    assert manifest(run_dir)["status"] == "finished"
    assert (run_dir / "figures" / "misclassified.png").is_file()

    run_cli("litlab-train", "experiment=logistic", "trainer=ddp", *QUIET, cwd=workdir)
    (run_dir,) = run_dirs(workdir, "logistic")
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.trainer.strategy == "ddp" and manifest(run_dir)["status"] == "finished"
    assert final_metrics(run_dir)["test/acc"] > 0.95
