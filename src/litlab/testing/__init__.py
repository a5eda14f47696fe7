"""The checks every litlab task must pass, for a project's own tests (``litlab new`` writes
``tests/test_<name>.py`` with them): train a small run once, then check it.

    from litlab.testing import small_run, check_loss_falls, ...
    run_dir = small_run("mytask", tmp_path)
    check_loss_falls(run_dir)

Each ``check_*`` raises ``AssertionError`` saying what went wrong. Nothing here needs data
beyond what the experiment's data module reads or draws; keep the experiment small (override
its sizes in ``small_run``) so the tests stay fast.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

QUIET = ["trainer=cpu", "logger=csv", "callbacks.progress_bar.refresh_rate=0"]


def small_run(experiment: str, run_dir: Path, *overrides: str) -> Path:
    """Fit and test ``experiment`` in-process on the CPU with a CSV log, into ``run_dir``, as
    ``litlab-train experiment=<experiment> <overrides>`` would (the current directory's project
    configs included); returns ``run_dir``."""
    from litlab.config import compose_config
    from litlab.run import fit_and_test

    cfg = compose_config([f"experiment={experiment}", *QUIET, *overrides], output_dir=run_dir)
    fit_and_test(cfg)
    return Path(run_dir)


def check_loss_falls(run_dir: Path) -> None:
    """The validation loss of the last epoch is below the first's."""
    with open(Path(run_dir) / "csv" / "metrics.csv") as f:
        losses = [float(row["val/loss"]) for row in csv.DictReader(f) if row.get("val/loss")]
    assert len(losses) >= 2, f"val/loss logged {len(losses)} time(s): train 2 epochs or more"
    assert losses[-1] < losses[0], f"val/loss did not fall: {losses}"


def check_checkpoint(run_dir: Path) -> None:
    """``best.ckpt`` loads with ``weights_only=True``: only tensors and plain values in it."""
    ckpt = torch.load(Path(run_dir) / "checkpoints" / "best.ckpt", weights_only=True)
    assert ckpt["state_dict"], "the checkpoint holds no weights"


def check_load(run_dir: Path) -> None:
    """``litlab.load`` rebuilds model and data module; the model gives one finite output per
    test sample."""
    import litlab

    model, datamodule = litlab.load(run_dir, datamodule=True)
    x, y, out = model.predict_split(datamodule, "test")
    assert len(out) == len(y) > 0 and torch.isfinite(out).all()


def check_predict(run_dir: Path, output: Path) -> None:
    """``litlab-predict``'s work on the test split writes one row per sample to ``output`` (a
    .csv), its columns those of ``prediction_columns``."""
    from litlab.config import compose_config
    from litlab.inference.predict import predict

    cfg = compose_config(["trainer=cpu"], Path(output).parent, config_name="predict")
    # Set after composing, not as overrides: a project's path may hold what Hydra's override
    # grammar reads otherwise (spaces, non-ASCII letters).
    cfg.ckpt_path, cfg.output = str(run_dir), str(output)
    predict(cfg)
    with open(output) as f:
        rows = list(csv.DictReader(f))
    model, datamodule = _loaded(run_dir)
    x, y, out = model.predict_split(datamodule, "test", limit=None)
    assert len(rows) == len(y), f"{len(rows)} rows for {len(y)} test samples"
    assert set(model.prediction_columns(out[:1])) <= set(rows[0]), sorted(rows[0])


def check_export(run_dir: Path, output: Path) -> None:
    """``litlab-export format=exported_program`` gives the model ``litlab.load`` gives, with
    the data module's preprocessing built in: the same outputs on samples as stored."""
    from litlab.inference.export import export_model
    from litlab.inference.inputs import test_split

    export_model(run_dir, "exported_program", Path(output))
    exported = torch.export.load(str(output)).module()
    model, datamodule = _loaded(run_dir)
    x = test_split(datamodule).x[:8]
    with torch.no_grad():
        expected = model(datamodule.on_after_batch_transfer((x, x), 0)[0])
        torch.testing.assert_close(exported(x), expected)


def _loaded(run_dir: Path):
    import litlab

    return litlab.load(run_dir, datamodule=True)
