"""The results table every sweep ends with: best first, seeds averaged."""

from __future__ import annotations

import pytest

from litlab.sweep.results import TrialRow, write_results
from tests.sweep.conftest import read_csv


def test_results_table_ranks_and_averages_seeds(tmp_path):
    rows = [
        TrialRow(str(i), ["experiment=logistic", f"lr={lr}", f"seed={s}"], "complete", acc)
        for i, (lr, s, acc) in enumerate(
            [(0.1, 0, 0.90), (0.1, 1, 0.94), (0.01, 0, 0.80), (0.01, 1, 0.84)]
        )
    ]
    rows.append(TrialRow("4", ["experiment=logistic", "lr=9.0", "seed=0"], "failed", error="NaN"))
    md = write_results(rows, tmp_path, "val/acc", "max").read_text()
    table = read_csv(tmp_path / "results.csv")
    assert [r["trial"] for r in table] == ["1", "0", "3", "2", "4"]  # best first, failed last
    assert table[-1]["status"] == "failed" and table[-1]["error"] == "NaN"
    by_config = read_csv(tmp_path / "results_by_config.csv")
    assert [r["lr"] for r in by_config] == ["0.1", "0.01", "9.0"]
    assert float(by_config[0]["val/acc mean"]) == pytest.approx(0.92)
    assert float(by_config[0]["val/acc std"]) == pytest.approx(0.0282843, rel=1e-4)
    assert "litlab-train -m experiment=logistic lr=0.1 seed=0,1" in md
    assert "0.92 ± 0.028" in md
