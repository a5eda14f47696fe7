"""Bad input: every numeric key of every experiment is guarded by a range (its target's type
hints, or ``config.values``' table for classes litlab does not own); values that cannot be right
end in one line naming the key, before anything is written; what the check lets through runs."""

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from litlab import LitlabError
from litlab.config import CONFIG_DIR, check_config, compose_config
from litlab.run import fit_and_test, plan
from litlab.run.build import build
from litlab.run.checkpoints import open_checkpoint
from tests.conftest import BIN, run_cli

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
# One experiment per kind of task (regression, binary, images) for the fast tier.
KINDS = ["linear", "logistic", "mnist"]
# Numeric keys whose default is null (no number to find in the config).
NULL_NUMBERS = [
    "trainer.limit_train_batches",
    "trainer.limit_val_batches",
    "trainer.limit_test_batches",
    "trainer.gradient_clip_val",
    "trainer.val_check_interval",
    "model.hidden_size",
    "data.eval_batch_size",
]
ABSENT = "<absent>"
# Checked when built: ImageDataModule checks its per-channel mean and std itself.
BUILT_CHECKED = "data.normalize."
# Values that are right for these keys, so the check must let them through.
ZERO_OK = {
    "seed", "slope", "intercept", "low", "high", "centers", "noise_std", "weight_decay",
    "dropout", "label_smoothing", "stem", "min_epochs", "patience", "min_delta", "refresh_rate",
    "max_depth", "num_sanity_val_steps", "overfit_batches", "limit_test_batches",
    "gradient_clip_val", "save_top_k", "mean", "num_workers",
}  # fmt: skip
MINUS_ONE_OK = {
    "seed", "slope", "intercept", "low", "high", "centers", "min_delta", "max_steps",
    "devices", "save_top_k", "max_depth", "num_sanity_val_steps", "mean",
}  # fmt: skip
# Right or wrong depending on the experiment (validation needed by a monitored val/ metric).
# And where Lightning is the judge, when the trainer is built (all CPUs is not a CPU device count).
EITHER = {("limit_val_batches", 0), ("devices", -1), ("devices", "abc")}
# Keys that change how many processes run: their accepted values are built, not run, here.
NOT_RUN = {"devices", "num_nodes"}


def numeric_keys(cfg) -> list[str]:
    """Every key holding an int or float (list items included), outside hydra and paths."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, int | float) and not isinstance(node, bool):
            found.append(path)

    plain = OmegaConf.to_container(cfg, resolve=True)
    for skip in ("paths", "hparams_search"):
        plain.pop(skip, None)
    walk(plain, "")
    return found + [k for k in NULL_NUMBERS if OmegaConf.select(cfg, k, default=ABSENT) is None]


def leaf(key: str) -> str:
    return key.split(".")[-1].split("[")[0]


def bad_values(cfg, key: str) -> list:
    values = [0, -1, float("nan"), float("inf"), "abc"]
    if isinstance(OmegaConf.select(cfg, key), int) or leaf(key) in ("seed", "batch_size"):
        values.append(1.5)  # a float where an integer belongs
    return values


def expected_ok(key: str, value) -> bool:
    name = leaf(key)
    return (value == 0 and name in ZERO_OK and not isinstance(value, float)) or (
        value == -1 and name in MINUS_ONE_OK
    )


def fake_run_dir(path: Path) -> dict[str, bytes]:
    """A directory holding what a run leaves; a refused run must not touch it."""
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "finished", "metrics": {"x": 1}}))
    (path / "config.yaml").write_text("name: earlier\n")
    return snapshot(path)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def unguarded_keys(base) -> list[str]:
    """The numeric keys of a config whose check lets nan through (no range, no type), or
    refuses it in more than one line or without naming the key. Holds for any task: the
    ranges come from each target's signature."""
    unguarded = []
    for key in numeric_keys(base):
        cfg = copy.deepcopy(base)
        OmegaConf.update(cfg, key, float("nan"), merge=False)
        try:
            (plan if key.startswith(BUILT_CHECKED) else check_config)(cfg)
        except LitlabError as err:
            if "\n" not in str(err) and key.split("[")[0] in str(err):
                continue
        unguarded.append(key)
    return unguarded


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_numeric_key_is_guarded(experiment, tmp_path, mnist_root):
    cfg = compose_config(
        [f"experiment={experiment}", f"paths.data_dir={mnist_root}"], output_dir=tmp_path
    )
    assert not unguarded_keys(cfg)


def compose_for_bad_values(experiment: str, path: Path, mnist_root: Path):
    return compose_config(
        [
            f"experiment={experiment}",
            f"paths.data_dir={mnist_root}",
            "logger=none",
            "trainer=cpu",
            "trainer.max_epochs=1",
            "callbacks.progress_bar.refresh_rate=0",
        ],
        output_dir=path,
    )


@pytest.mark.parametrize("experiment", KINDS)
def test_a_bad_value_of_every_numeric_key(experiment, tmp_path, mnist_root):
    """The fast tier: one value per key, each experiment starting at another place in the list
    of bad values, so together they try each kind of bad value on keys of every kind."""
    base = compose_for_bad_values(experiment, tmp_path / "run", mnist_root)
    start = KINDS.index(experiment)
    tries = []
    for i, key in enumerate(numeric_keys(base)):
        values = bad_values(base, key)
        tries.append((key, values[(start + i) % len(values)]))
    assert not try_values(base, tries, tmp_path / "run", run_accepted=False)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_bad_values_of_every_numeric_key(experiment, tmp_path, mnist_root):
    """Every bad value for every key; for logistic, what the check lets through is also run."""
    base = compose_for_bad_values(experiment, tmp_path / "run", mnist_root)
    tries = [(key, value) for key in numeric_keys(base) for value in bad_values(base, key)]
    assert len(tries) > 50
    surprises = try_values(base, tries, tmp_path / "run", run_accepted=experiment == "logistic")
    assert not surprises, "\n".join(surprises)


def try_values(base, tries: list, run_dir: Path, run_accepted: bool) -> list[str]:
    """Each ``(key, value)`` through ``plan()``: refused in one line naming the key where the
    value cannot be right, and nothing written; built (and run, if asked) where it can."""
    before = fake_run_dir(run_dir)
    surprises = []
    for key, value in tries:
        cfg = copy.deepcopy(base)
        OmegaConf.update(cfg, key, value, merge=False)
        right = expected_ok(key, value) or (leaf(key), value) in EITHER
        wrong = not expected_ok(key, value) or (leaf(key), value) in EITHER
        try:
            checked = plan(cfg)  # every check, then everything built; nothing written
        except LitlabError as err:
            if not wrong or "\n" in str(err) or leaf(key) not in str(err):
                surprises.append(f"{key}={value!r}: {err}")
            assert snapshot(run_dir) == before, f"{key}={value!r} wrote files"
            continue
        if not right:
            surprises.append(f"{key}={value!r} was let through")
        elif run_accepted and leaf(key) not in NOT_RUN:
            del checked
            _runs_or_fails_in_one_line(cfg, key, value, surprises)
            _restore(run_dir, before)
    return surprises


def test_what_a_target_raises_is_one_line():
    """Hydra 1.3 wraps a target's exception in InstantiationException, 1.4 raises it as it is:
    either way the user reads one line (here Lightning refuses -1 CPU devices when built)."""
    node = OmegaConf.create(
        {"_target_": "lightning.pytorch.Trainer", "accelerator": "cpu", "devices": -1}
    )
    with pytest.raises(LitlabError) as err:
        build(node, "trainer")
    assert str(err.value).startswith("Could not build trainer: TypeError: `devices` selected")
    assert "\n" not in str(err.value)


def _runs_or_fails_in_one_line(cfg, key, value, surprises) -> None:
    try:
        fit_and_test(cfg)
    except LitlabError as err:
        if "\n" in str(err):
            surprises.append(f"{key}={value!r}: {err}")


def _restore(path: Path, files: dict[str, bytes]) -> None:
    import shutil

    shutil.rmtree(path)
    path.mkdir()
    for name, data in files.items():
        (path / name).write_bytes(data)


BAD_ON_THE_COMMAND_LINE = [
    ["experiment=linear", "data.batch_size=abc"],  # item 5: used to be a 79-line traceback
    ["experiment=logistic", "model.optimizer.lr=nan"],
    ["experiment=logistic", "seed=1.5"],
    ["experiment=logistic", "trainer.max_epochs=0"],  # item 7: tested an untrained model
    ["experiment=logistic", "train=false"],
]


@pytest.mark.slow
def test_bad_input_on_the_command_line_is_one_line(tmp_path):
    env = {**os.environ, "LITLAB_LOG_DIR": str(tmp_path / "logs")}
    procs = [  # side by side: each spends its few seconds importing torch
        subprocess.Popen(
            [str(BIN / "litlab-train"), *args, "logger=none"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in BAD_ON_THE_COMMAND_LINE
    ]
    for args, proc in zip(BAD_ON_THE_COMMAND_LINE, procs, strict=True):
        stderr = proc.communicate(timeout=300)[1]
        lines = stderr.strip().splitlines()
        assert proc.returncode == 1 and "Traceback" not in stderr, args
        assert lines[-1].startswith("litlab: error: "), (args, lines[-1])
        assert args[-1].split("=")[0] in lines[-1]
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").rglob("run.json"))
    # A refused run leaves no run dir behind.
    assert not list((tmp_path / "logs").rglob("*/runs/*"))


class Foreign:
    """Any class: pickled into a checkpoint, it is code that safe loading must refuse to run."""


def write_bad_checkpoints(folder: Path, good: Path) -> dict[str, Path]:
    paths = {name: folder / f"{name}.ckpt" for name in ("empty", "tensor", "random", "object")}
    paths["empty"].write_bytes(b"")
    torch.save(torch.zeros(3), paths["tensor"])
    paths["random"].write_bytes(bytes(range(256)) * 40)
    torch.save({"state_dict": {}, "x": Foreign()}, paths["object"])
    data = good.read_bytes()
    paths["truncated"] = folder / "truncated.ckpt"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["not_litlab"] = folder / "not_litlab.ckpt"
    torch.save({"state_dict": {}}, paths["not_litlab"])
    return paths


def test_unreadable_checkpoints_get_one_line_without_unsafe_advice(cfg_for, tmp_path):
    """Item 8: an empty file crashed litlab's own handler; a tensor gave an AttributeError;
    random bytes repeated torch's advice to load with weights_only=False."""
    run = fit_and_test(cfg_for("experiment=linear", "logger=none", "trainer.max_epochs=1"))
    good = Path(run.trainer.checkpoint_callback.best_model_path)
    for name, path in write_bad_checkpoints(tmp_path, good).items():
        with pytest.raises(LitlabError) as err:
            open_checkpoint(path, prefer="best")
        message = str(err.value)
        assert "\n" not in message and str(path) in message, name
        assert "weights_only" not in message, name


@pytest.mark.slow
def test_eval_without_or_with_an_empty_checkpoint(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    for args in ([], ["ckpt_path=empty.ckpt"]):
        proc = run_cli("litlab-eval", *args, cwd=tmp_path, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith("litlab: error: ")
        if not args:  # no ckpt_path: it says how to give one
            assert "ckpt_path=<checkpoint file or run dir>" in proc.stderr
    # Item 12: a failed eval leaves no empty logs/eval/runs/<time>/ behind.
    assert not list((tmp_path / "logs").glob("eval/runs/*"))
