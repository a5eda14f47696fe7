"""litlab-compare: many runs side by side in one table."""

import pytest

from litlab.cli.compare import main as compare_main
from litlab.config import compose_config
from litlab.run import fit_and_test
from litlab.tracking.compare import read_runs, to_csv, to_frame

# Every step logged, so run.json holds train/loss_step too (which the table leaves out).
LOG_STEPS = ["callbacks.progress_bar.refresh_rate=0", "trainer.log_every_n_steps=1"]


def test_compare_reads_many_runs_into_one_table(tmp_path, capsys):
    for seed in (0, 1):
        cfg = compose_config(
            [
                "experiment=linear",
                "logger=none",
                "trainer.max_epochs=1",
                f"seed={seed}",
                *LOG_STEPS,
            ],
            output_dir=tmp_path / "runs" / f"seed{seed}",
        )
        fit_and_test(cfg)
    rows = read_runs([tmp_path / "runs"], config_keys=["model.optimizer.lr"])
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(r["status"] == "finished" and r["model.optimizer.lr"] == 0.3 for r in rows)
    assert rows[0]["test/loss"] != rows[1]["test/loss"]
    header = to_csv(rows).splitlines()[0].split(",")
    assert header[:6] == ["run_dir", "name", "status", "seed", "start_time", "overrides"]
    assert not [h for h in header if h.endswith(("_step", "_epoch"))]  # final metrics only
    capsys.readouterr()  # the runs' own output
    compare_main([str(tmp_path / "runs" / "seed1")])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith(str(tmp_path / "runs" / "seed1"))
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            to_frame(rows)
    else:
        frame = to_frame(rows)
        assert list(frame["seed"]) == [0, 1] and "test/loss" in frame.columns
