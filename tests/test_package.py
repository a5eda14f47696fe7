"""litlab as a real package: a wheel (not an editable install) carries the configs, and its
console scripts run from any directory."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from litlab.config import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_its_commands_run_anywhere(tmp_path, wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # pyproject.toml lists the packages (the configs' mapping needs a list): a subpackage
    # missing there would be missing from every installed copy. Nothing else ships: the lessons'
    # code stays in notebooks/.
    modules = {p.relative_to(REPO / "src").as_posix() for p in (REPO / "src").rglob("*.py")}
    shipped = {n for n in names if n.endswith(".py") and not n.startswith("litlab/templates/")}
    assert shipped == modules, sorted(shipped ^ modules)
    configs = {
        f"litlab/configs/{p.relative_to(CONFIG_DIR).as_posix()}" for p in CONFIG_DIR.rglob("*.yaml")
    }
    assert configs <= names and "hydra_plugins/litlab_launcher/__init__.py" in names
    # Installed apart from this venv's editable litlab (torch & co. come from the venv).
    site = tmp_path / "site"
    install = ["install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run([sys.executable, "-m", "pip", *install], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "LITLAB_LOG_DIR": str(work / "logs")}

    def run(*argv: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{argv}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    where = run(
        sys.executable, "-c",
        "import litlab, litlab.config, hydra_plugins.litlab_launcher as h; "
        "print(litlab.__file__, litlab.config.CONFIG_DIR, h.__file__, sep='\\n')",
    ).stdout.split()  # fmt: skip
    assert all(Path(p).is_relative_to(site) for p in where), where  # not src/ nor configs/
    train = [str(site / "bin" / "litlab-train"), "experiment=linear", "trainer.max_epochs=1"]
    run(*train, "logger=none", "trainer=cpu", "callbacks.progress_bar.refresh_rate=0")
    (run_dir,) = (work / "logs" / "linear" / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert (run_dir / "checkpoints" / "best.ckpt").is_file() and (run_dir / "config.yaml").is_file()
    run(str(site / "bin" / "litlab-eval"), f"ckpt_path={run_dir}", "trainer=cpu")
    (eval_dir,) = (work / "logs" / "eval" / "runs").iterdir()
    assert json.loads((eval_dir / "eval.json").read_text())["status"] == "finished"
    # litlab new copies the templates the wheel carries (litlab/templates/).
    run(str(site / "bin" / "litlab"), "new", str(work / "project"))
    assert (work / "project" / "src" / "project" / "model.py").is_file()
    for tool in ("litlab-predict", "litlab-export"):
        assert f"usage: {tool}" in run(str(site / "bin" / tool), "--help").stdout
