"""The environment and the extras: requirements.lock pins what pyproject.toml asks for, each
option that needs a package outside the base dependencies is refused in one line naming its
extra when the package is missing, and the wheel installed without [dev] either runs each
option or refuses it so."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from litlab import LitlabError
from litlab.config import check_config, compose_config
from litlab.config.extras import EXTRAS

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRA_NAMES = set(PROJECT["optional-dependencies"])


def _pins(path: Path) -> dict[str, Version]:
    """A constraints file's ``name==version`` lines, by canonical name."""
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    pairs = [line.split("==") for line in lines if line]
    return {canonicalize_name(name): Version(version) for name, version in pairs}


def refusal(option: str) -> str:
    """The line litlab ends with when ``option``'s package is missing."""
    module, extra = EXTRAS[option]
    return f"{option} needs {module.split('.')[-1]}: pip install 'litlab[{extra}]'"


def test_the_lock_pins_every_dependency_of_pyproject_within_its_range():
    lock, torch_pair = _pins(REPO / "requirements.lock"), _pins(REPO / "constraints.txt")
    assert torch_pair.keys() == {"torch", "torchvision"} and not lock.keys() & torch_pair.keys()
    pins = lock | torch_pair
    extras = PROJECT["optional-dependencies"]
    for line in [*PROJECT["dependencies"], *(r for group in extras.values() for r in group)]:
        req = Requirement(line)
        if req.name == "litlab":  # [dev] installs every other extra: the tests use them all
            assert req.extras == EXTRA_NAMES - {"dev"}
            continue
        if req.marker and not req.marker.evaluate():
            continue  # not for this Python (the lock is resolved for one; see its first line)
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(pin, prereleases=True), (
            f"{req.name}=={pin} is not {req}: run make lock"
        )


def test_every_option_names_an_extra_of_pyproject():
    assert {extra for _, extra in EXTRAS.values()} <= EXTRA_NAMES - {"dev"}


def test_a_logger_without_its_package_is_refused_before_the_run_in_one_line(monkeypatch):
    cfg = compose_config(["experiment=linear", "logger=many"])  # csv, tensorboard, wandb
    check_config(cfg)  # [dev] installs tensorboard
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    with pytest.raises(LitlabError) as err:
        check_config(cfg)
    assert str(err.value) == refusal("logger=tensorboard")
    check_config(compose_config(["experiment=linear", "logger=many", "logger.tensorboard=null"]))


def test_the_slurm_launcher_without_its_plugin_is_refused_before_hydra(monkeypatch, tmp_path):
    from litlab.cli.train import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_submitit_launcher", None)
    monkeypatch.setattr(sys, "argv", ["litlab-train", "-m", "hydra/launcher=slurm"])
    with pytest.raises(SystemExit) as err:
        main()
    assert err.value.code == f"litlab: error: {refusal('hydra/launcher=slurm')}"
    assert not list(tmp_path.iterdir())  # Hydra never started: no run dir, no log


def test_onnx_export_without_onnxscript_is_refused_before_the_checkpoint_is_read(
    monkeypatch, tmp_path
):
    from litlab.inference.export import export_model

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(LitlabError) as err:  # not "no checkpoint at ...": it is never opened
        export_model(tmp_path / "missing.ckpt", "onnx", tmp_path / "model.onnx")
    assert str(err.value) == refusal("format=onnx")


def test_a_postgresql_storage_without_its_driver_names_the_extra(monkeypatch):
    from litlab.sweep.storage import check_driver

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(LitlabError, match=r"pip install 'litlab\[postgres\]'") as err:
        check_driver("postgresql://optuna@localhost:5432/optuna")
    assert len(str(err.value).splitlines()) == 1


# Run by the venv's Python: every logger and callback option of the installed configs, and a
# PostgreSQL storage, built (not run) or refused in one line; what is installed of each extra.
PROBE = """
import importlib.util, json, sys
import litlab
from litlab import LitlabError
from litlab.config import CONFIG_DIR, check_config, compose_config, to_plain
from litlab.config.extras import EXTRAS
from litlab.run.build import build_all
from litlab.sweep.storage import check_driver

def outcome(build):
    try:
        build()
        return "works"
    except LitlabError as err:
        return str(err)

def run(option):
    cfg = compose_config(["experiment=linear", option])
    check_config(cfg)
    build_all(cfg, to_plain(cfg))

groups = ("logger", "callbacks")
options = [f"{g}={p.stem}" for g in groups for p in sorted((CONFIG_DIR / g).glob("*.yaml"))]
found = {o: outcome(lambda o=o: run(o)) for o in options}
found["postgresql://"] = outcome(lambda: check_driver("postgresql://optuna@localhost/optuna"))
present = {o: importlib.util.find_spec(m) is not None for o, (m, _) in EXTRAS.items()}
print(json.dumps({"litlab": litlab.__file__, "found": found, "present": present}))
"""


@pytest.mark.slow
def test_the_wheel_without_dev_runs_each_option_or_names_its_extra(tmp_path, wheel):
    """One fresh venv: the wheel and its base dependencies as the lock pins them, torch from
    the local wheelhouse (constraints.txt). About 2 minutes on 2 cores (3.5 when they are busy),
    most of it installing torch; then each option is built in one process, not run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # not this clone's src/
    env |= {"LITLAB_LOG_DIR": str(tmp_path / "logs"), "WANDB_MODE": "offline"}

    def run(*argv) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)

    venv = tmp_path / "venv"
    bin_ = venv / "bin"
    pins = ["-c", REPO / "constraints.txt", "-c", REPO / "requirements.lock"]
    # --no-compile: Python compiles what the probe imports; the rest of torch & co. need no .pyc.
    install = [bin_ / "pip", "install", "--no-compile", *pins, wheel]
    for step in ([sys.executable, "-m", "venv", venv], install):
        proc = run(*step)
        assert proc.returncode == 0, proc.stderr
    probe = run(bin_ / "python", "-c", PROBE)
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.splitlines()[-1])
    assert Path(report["litlab"]).is_relative_to(venv)
    found, present = report["found"], report["present"]
    assert found["postgresql://"].endswith("pip install 'litlab[postgres]'.")
    for outcome in found.values():  # refused: one line, naming an extra that exists
        named = outcome.partition("pip install 'litlab[")[2].partition("]")[0]
        assert outcome == "works" or ("\n" not in outcome and named in EXTRA_NAMES), outcome
    for option in ("logger=tensorboard", "logger=mlflow"):
        assert found[option] == ("works" if present[option] else refusal(option))
    # The two that Hydra or the export would fail on deep inside, refused by the commands.
    for option, command in [
        ("hydra/launcher=slurm", ["litlab-train", "-m", "hydra/launcher=slurm"]),
        ("format=onnx", ["litlab-export", f"ckpt_path={tmp_path / 'missing.ckpt'}"]),
    ]:
        assert not present[option]  # else this test cannot tell
        proc = run(bin_ / command[0], *command[1:])
        assert (proc.returncode, proc.stderr) == (1, f"litlab: error: {refusal(option)}\n")
