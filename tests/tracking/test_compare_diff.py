"""The environment a run records, and litlab-compare --diff (issue 22 item 7)."""

import json
import shutil
from importlib.metadata import version

import lightning
import pytest

from litlab.cli.compare import main as compare_main
from litlab.config import compose_config
from litlab.run import fit_and_test
from tests.tracking.conftest import manifest

QUIET = ["experiment=linear", "logger=none", "trainer=cpu", "trainer.max_epochs=1"]
QUIET += ["callbacks.progress_bar.refresh_rate=0"]


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
    """Two runs of one experiment: another learning rate, another data seed."""
    root = tmp_path_factory.mktemp("pair")
    fit_and_test(compose_config(QUIET, output_dir=root / "a"))
    more = ["model.optimizer.lr=0.1", "data.seed=7"]
    fit_and_test(compose_config([*QUIET, *more], output_dir=root / "b"))
    return root


@pytest.fixture
def two_runs(trained_pair, tmp_path):
    """The pair's records, each test its own copy to change."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        shutil.copy(trained_pair / name / "run.json", tmp_path / name)
    return tmp_path / "a", tmp_path / "b"


def rewrite(run_dir, change) -> None:
    record = manifest(run_dir)
    change(record)
    (run_dir / "run.json").write_text(json.dumps(record))


def test_run_json_records_every_installed_package(two_runs):
    packages = manifest(two_runs[0])["packages"]
    assert packages["torch"] == version("torch") and packages["lightning"] == lightning.__version__
    assert packages["typing-extensions"] == version("typing_extensions")  # normalized names
    assert packages["pytest"] == pytest.__version__  # not only litlab's own dependencies
    assert list(packages) == sorted(packages) and len(packages) > 50


def test_diff_prints_what_differs_one_line_each(two_runs, capsys):
    a, b = two_runs
    rewrite(b, lambda m: m["packages"].update(torch="0.0.1", extra="1.0"))  # another environment
    rewrite(b, lambda m: m["git"].update(commit="0" * 40))
    commit = manifest(a)["git"]["commit"]
    capsys.readouterr()
    compare_main(["--diff", str(a), str(b)])
    assert capsys.readouterr().out.splitlines() == [
        f"A: {a}",
        f"B: {b}",
        "config model.optimizer.lr: 0.3 -> 0.1",
        "data data.seed: 0 -> 7",
        f"git commit: {commit} -> {'0' * 40}",
        "package extra: (absent) -> 1.0",
        f"package torch: {version('torch')} -> 0.0.1",
    ]  # the run dirs themselves (paths.output_dir, in which they differ) are not a difference
    compare_main(["--diff", str(a), str(a)])
    assert capsys.readouterr().out.splitlines()[2:] == [
        "no differences in config, data, git, system or packages"
    ]


def test_diff_of_a_run_that_recorded_no_packages_compares_the_few_versions(two_runs, capsys):
    a, b = two_runs
    rewrite(a, lambda m: m.pop("packages"))
    rewrite(b, lambda m: m["versions"].update(lightning="9.9"))
    capsys.readouterr()
    compare_main(["--diff", str(a), str(b)])
    out = capsys.readouterr().out.splitlines()
    assert "package: a run recorded no package list; comparing litlab's few versions" in out
    assert f"package lightning: {lightning.__version__} -> 9.9" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--diff", "{a}"], "--diff compares two run dirs (got 1)"),
        (["--diff", "{a}", "{a}", "-k", "seed"], "-k chooses columns of the table"),
        (
            ["--diff", "{a}", "{a}/nowhere"],
            "/nowhere is not a run dir: it has no readable run.json",
        ),
    ],
)
def test_diff_refusals_are_one_line(tmp_path, args, said):
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(SystemExit) as err:
        compare_main([a.format(a=tmp_path) for a in args])
    assert str(err.value).startswith("litlab: error: ") and said in str(err.value)
    assert "\n" not in str(err.value)
