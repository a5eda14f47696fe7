"""init_from: a new run that starts from a trained run's weights (issue 22 item 1)."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from omegaconf import OmegaConf
from torch import nn

from litlab import LitlabError
from litlab.run import fit_and_test
from litlab.run.init_from import load_weights
from tests.conftest import SMALL_MNIST, run_cli, run_dirs

QUIET = ["logger=none", "trainer=cpu"]


def hashes(run_dir: Path) -> dict[str, str]:
    """Every file of a run dir with the SHA-256 of its bytes: "untouched" compares these."""
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


class AtFirstStep(Callback):
    """What the model holds, and where the trainer stands, just before the first step."""

    def on_train_start(self, trainer, pl_module):
        self.weights = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.step, self.epoch = trainer.global_step, trainer.current_epoch


def test_a_new_run_starts_from_the_parents_weights_and_leaves_it_untouched(
    cfg_for, trained, tmp_path
):
    parent = trained("logistic")
    before = hashes(parent)
    best = parent / "checkpoints" / "best.ckpt"
    seen = AtFirstStep()
    args = ["experiment=logistic", *QUIET, "trainer.max_epochs=2", f"init_from={parent}"]
    child = fit_and_test(cfg_for(*args), callbacks=[seen])
    parents = weights(best)
    assert seen.weights.keys() == parents.keys()
    assert all(torch.equal(seen.weights[k], parents[k]) for k in parents)
    assert (seen.step, seen.epoch) == (0, 0)  # its own optimizer and schedule, from step 0
    assert not all(torch.equal(v, parents[k]) for k, v in child.model.state_dict().items())
    run_dir = tmp_path / "run"
    record = json.loads((run_dir / "run.json").read_text())["init_from"]
    assert record["run_dir"] == str(parent) and record["checkpoint"] == str(best)
    assert record["sha256"] == hashlib.sha256(best.read_bytes()).hexdigest()
    assert record["strict"] and record["skipped"] == record["missing"] == []
    assert hashes(parent) == before
    # The fine-tuned run resumes like any other; its record of the parent stays.
    resumed = fit_and_test(cfg_for(f"ckpt_path={run_dir}", "trainer.max_epochs=3"))
    assert resumed.trainer.current_epoch == 3
    assert json.loads((run_dir / "run.json").read_text())["init_from"] == record
    assert hashes(parent) == before


@pytest.mark.parametrize("strict", ["true", "false"])
def test_a_checkpoint_of_another_task_is_refused_in_one_line(cfg_for, trained, tmp_path, strict):
    parent = trained("logistic")
    before = hashes(parent)
    cfg = cfg_for("experiment=linear", *QUIET, f"init_from={parent}", f"init_strict={strict}")
    with pytest.raises(LitlabError) as err:
        fit_and_test(cfg)
    message = str(err.value)
    assert "\n" not in message and "none of its 2 tensors fits this model" in message
    assert "experiment 'logistic'" in message
    assert not (tmp_path / "run").exists()  # a refused run writes nothing
    assert hashes(parent) == before


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["init_from=a", "ckpt_path=b"], "init_from and ckpt_path do not go together"),
        (["init_from=a", "init_strict=maybe"], "init_strict='maybe' is not allowed"),
        (["init_from=nowhere"], "init_from=nowhere: no such file or run directory"),
    ],
)
def test_init_from_refusals(cfg_for, args, said):
    with pytest.raises(LitlabError, match=said):
        fit_and_test(cfg_for("experiment=linear", *QUIET, *args))


class Tiny(nn.Module):
    def __init__(self, classes: int, extra: str):
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.head = nn.Linear(4, classes)
        self.add_module(extra, nn.Linear(2, 2))


def test_partial_loading_reports_what_it_left_out_one_line_each(tmp_path, capsys):
    """A new head with another class count: under init_strict=false the body loads, and the
    head (another shape), the tensors only the checkpoint has, and those it lacks are listed."""
    parent, child = Tiny(10, "old"), Tiny(12, "new")
    path = tmp_path / "parent.ckpt"
    saved = {"name": "tiny", "model": {"_target_": "Tiny"}}
    torch.save({"state_dict": parent.state_dict(), "litlab": {"config": saved}}, path)
    head = child.head.weight.detach().clone()
    cfg = OmegaConf.create({"init_from": str(path), "init_strict": True, **saved})
    with pytest.raises(LitlabError) as err:
        load_weights(child, cfg)
    assert str(err.value) == (
        f"init_from={path} does not fit this model: head.bias is 10 in the checkpoint and 12 "
        "here. init_strict=false loads the tensors that fit and lists the rest."
    )
    capsys.readouterr()
    cfg.init_strict = False
    record = load_weights(child, cfg)
    assert torch.equal(child.body.weight, parent.body.weight)
    assert torch.equal(child.head.weight, head)  # kept as initialised
    assert capsys.readouterr().err.splitlines() == [
        f"litlab: init_from: loaded 2 of 6 tensors from {path}",
        "litlab: init_from: missing (left as initialised): new.bias, new.weight",
        "litlab: init_from: unexpected (not used): old.bias, old.weight",
        "litlab: init_from: skipped, shapes differ: head.bias (10 in the checkpoint, 12 here), "
        "head.weight (10x4 in the checkpoint, 12x4 here)",
    ]
    assert record["missing"] == ["new.bias", "new.weight"] and record["run_dir"] is None
    assert record["skipped"] == ["head.bias", "head.weight"] and not record["strict"]


@pytest.mark.slow
def test_a_new_head_on_mnist_under_partial_loading(cfg_for, trained, tmp_path, capsys):
    """The README's fine-tune: the trained digit classifier, a head with 12 classes."""
    parent = trained("mnist")
    before = hashes(parent)
    args = ["experiment=mnist", *SMALL_MNIST, *QUIET, f"init_from={parent}", "model.num_classes=12"]
    with pytest.raises(LitlabError, match="init_strict=false loads the tensors that fit"):
        fit_and_test(cfg_for(*args))
    seen = AtFirstStep()
    fit_and_test(cfg_for(*args, "init_strict=false"), callbacks=[seen])
    record = json.loads((tmp_path / "run" / "run.json").read_text())["init_from"]
    head = record["skipped"]
    assert len(head) == 2 and all(k.endswith(("weight", "bias")) for k in head)
    parents = weights(parent / "checkpoints" / "best.ckpt")
    assert all(torch.equal(seen.weights[k], v) for k, v in parents.items() if k not in head)
    assert seen.weights[head[0]].shape[0] == 12
    assert "skipped, shapes differ" in capsys.readouterr().err
    assert hashes(parent) == before


@pytest.mark.slow
def test_init_from_under_ddp_cpu_from_the_command_line(trained, tmp_path, monkeypatch):
    """As a user types it, on two processes: one new run dir, written once, with its own wandb
    run, and the parent's files untouched."""
    parent = trained("logistic")
    before = hashes(parent)
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["experiment=logistic", "trainer=ddp_cpu", "trainer.max_epochs=1"]
    proc = run_cli("litlab-train", *args, f"init_from={parent}", cwd=tmp_path)
    assert proc.stderr.count(f"litlab: init_from: loaded 2 of 2 tensors from {parent}") == 1
    (run_dir,) = run_dirs(tmp_path, "logistic")
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["hardware"]["world_size"] == 2
    assert record["init_from"]["run_dir"] == str(parent) and record["wandb"]["id"]
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    assert hashes(parent) == before
