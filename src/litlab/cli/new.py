"""``litlab new DIR [--name NAME]``: a research project of one's own, with litlab as a dependency.

The project is ``templates/project/`` (pyproject.toml, Makefile, README, tests, a search space)
plus ``templates/task/``'s data module, model and configs, the template name ``mytask`` replaced
by the project's everywhere. litlab's commands find its configs through ``[tool.litlab]`` in its
pyproject.toml (``litlab.config.project``).
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
from pathlib import Path

from litlab import LitlabError, __version__
from litlab.cli.common import user_errors
from litlab.config import TEMPLATE_DIR

TOKEN = "mytask"  # the name the templates use, in file names and texts alike
# Where each file of templates/task/ goes in a project, and what replaces its line that says
# where to copy it in a clone (None: the line goes).
TASK_FILES = {
    "data.py": ("src/mytask/data.py", '"""The data module of mytask, from litlab\'s templates.'),
    "model.py": (
        "src/mytask/model.py",
        '"""The task of mytask (a LightningModule), from litlab\'s templates.',
    ),
    "data.yaml": ("configs/data/mytask.yaml", "# Every key is an argument of the class below;"),
    "model.yaml": ("configs/model/mytask.yaml", None),
    "experiment.yaml": ("configs/experiment/mytask.yaml", None),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="litlab", description="litlab's project tools.")
    p.add_argument("--version", action="version", version=f"litlab {__version__}")
    commands = p.add_subparsers(dest="command", required=True)
    new = commands.add_parser(
        "new",
        help="create a research project of your own, on litlab",
        description="Create DIR: a Python package with a data module and a model to make yours, "
        "its configs (data, model, experiment, hparams_search), tests, a Makefile (make train, "
        "make test) and a README. litlab's commands run in DIR use its configs.",
    )
    new.add_argument("dir", metavar="DIR", type=Path, help="a new or empty folder")
    new.add_argument("--name", help="the package and experiment name (default: DIR's name)")
    return p


def create(folder: Path, name: str) -> None:
    """Write the project ``name`` into ``folder``, which must be new or empty."""
    if not name.isidentifier() or keyword.iskeyword(name):
        raise LitlabError(f"{name!r} is not a valid Python package name: give one with --name.")
    if importlib.util.find_spec(name) is not None:
        raise LitlabError(f"a module named {name!r} is importable already: choose another --name.")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise LitlabError(f"{folder} exists and is not empty: give a new or empty folder.")

    def write(relative: str, text: str) -> None:
        path = folder / relative.replace(TOKEN, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace(TOKEN, name))

    project = TEMPLATE_DIR / "project"
    for source in sorted(project.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            write(source.relative_to(project).as_posix(), source.read_text())
    for template, (relative, header) in TASK_FILES.items():
        text = (TEMPLATE_DIR / "task" / template).read_text()
        # In a clone the task lives in litlab's packages; here, in the project's own.
        text = text.replace("litlab.data.mytask", "mytask.data")
        text = text.replace("litlab.models.mytask", "mytask.model")
        lines = [header if "TEMPLATE" in line else line for line in text.splitlines()]
        write(relative, "\n".join(line for line in lines if line is not None) + "\n")


def main(argv: list[str] | None = None) -> None:
    """``litlab new DIR``: create the project and say what to run next."""
    args = _parser().parse_args(argv)
    with user_errors():
        name = args.name or args.dir.resolve().name
        create(args.dir, name)
    print(
        f"litlab: created the project {name} in {args.dir}. Next:\n"
        f"  cd {args.dir} && make train     # .venv with litlab and {name}, then a run\n"
        f"  (or: pip install -e {args.dir} && cd {args.dir} && litlab-train experiment={name})"
    )


if __name__ == "__main__":
    main()
