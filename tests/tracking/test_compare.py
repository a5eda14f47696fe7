"""litlab-compare: many runs side by side in one table."""

import json

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


def test_unreadable_run_json_is_skipped_with_one_warning(tmp_path, capsys):
    """Issue 21 item 17: a truncated, empty or garbage run.json gave a blank row without a word,
    and a JSON list an AttributeError."""
    good = {"name": "linear", "status": "finished", "metrics": {"test/loss": 0.5}}
    texts = {"good": json.dumps(good), "cut": json.dumps(good)[:20], "empty": "", "list": "[1]"}
    for name, text in {**texts, "garbage": "\x00\xff not json"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(text)
    compare_main([str(tmp_path)])
    out, err = capsys.readouterr()
    assert out.splitlines()[1].startswith(str(tmp_path / "good"))
    assert len(out.splitlines()) == 2
    warnings = err.strip().splitlines()
    assert len(warnings) == 4 and all(w.startswith("litlab: warning: skipping ") for w in warnings)
    for name in ("cut", "empty", "list", "garbage"):
        assert sum(str(tmp_path / name / "run.json") in w for w in warnings) == 1
