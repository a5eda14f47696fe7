"""``litlab-compare --plot METRIC -k KEY -o FILE.png``: a metric against a config value."""

from __future__ import annotations

import json

import pytest

from litlab.cli.compare import main as compare_main
from litlab.tracking.compare import plot_runs, read_runs
from tests.tracking.conftest import assert_picture

RUNS = [(0.001, "Adam", 0.9), (0.01, "Adam", 0.5), (0.1, "SGD", 0.2), (0.1, "SGD", 0.4)]


@pytest.fixture
def runs(tmp_path):
    for i, (lr, name, loss) in enumerate(RUNS):
        run = tmp_path / "runs" / str(i)
        run.mkdir(parents=True)
        config = {"model": {"optimizer": {"lr": lr, "_target_": f"torch.optim.{name}"}}}
        record = {"name": "linear", "status": "finished", "config": config}
        record["metrics"] = {"val/loss": loss, "test/loss": loss + 1}
        (run / "run.json").write_text(json.dumps(record))
    return tmp_path / "runs"


def test_a_metric_against_a_number_key_has_a_point_per_run_and_the_means(runs):
    fig = plot_runs(read_runs([runs], ["model.optimizer.lr"]), "val/loss", "model.optimizer.lr")
    (ax,) = fig.axes
    assert sorted(map(tuple, ax.collections[0].get_offsets().tolist())) == sorted(
        (lr, loss) for lr, _, loss in RUNS
    )
    (means,) = ax.lines
    assert means.get_xdata().tolist() == [0.001, 0.01, 0.1]
    assert means.get_ydata().tolist() == pytest.approx([0.9, 0.5, 0.3])
    assert ax.get_xscale() == "log"  # 0.001 to 0.1: learning rates span decades


def test_a_metric_against_a_text_key_uses_categories(runs):
    key = "model.optimizer._target_"
    (ax,) = plot_runs(read_runs([runs], [key]), "val/loss", key).axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["torch.optim.Adam", "torch.optim.SGD"]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([0.7, 0.3])


def test_the_command_saves_the_picture(runs, tmp_path, capsys):
    out = tmp_path / "lr.png"
    compare_main([str(runs), "-k", "model.optimizer.lr", "--plot", "val/loss", "-o", str(out)])
    assert_picture(out)
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--plot", "val/loss", "-o", "x.png"], "needs the key to plot against"),
        (["--plot", "val/acc", "-k", "model.optimizer.lr", "-o", "x.png"], "no run has both"),
    ],
)
def test_a_plot_it_cannot_draw_is_one_line(args, says, runs):
    with pytest.raises(SystemExit) as stop:
        compare_main([str(runs), *args])
    assert says in stop.value.code and "\n" not in stop.value.code
