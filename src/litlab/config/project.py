"""A research project of one's own (``litlab new DIR``): its configs on top of litlab's.

A project says where its configs are in its ``pyproject.toml``::

    [tool.litlab]
    configs = "configs"
    trusted = ["mytask"]   # packages a checkpoint's data and model may come from

litlab's commands, run in that folder or below it, find the nearest ``pyproject.toml`` and put
that folder first on Hydra's search path, before litlab's own: the project's groups (data, model,
experiment, hparams_search) join litlab's (trainer, logger, callbacks, ...), and a file of the
project's shadows litlab's of the same name. No ``[tool.litlab]``: litlab's configs alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin

from litlab import LitlabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pyproject.toml's dependency for Python 3.10
    import tomli as tomllib


def _project(start: Path | None = None) -> tuple[Path, dict] | None:
    """The folder of the nearest ``pyproject.toml`` above ``start`` (default: the current
    directory) and its ``[tool.litlab]`` table; None when that file has none."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                tool = tomllib.loads(pyproject.read_text()).get("tool", {})
            except tomllib.TOMLDecodeError as err:
                raise LitlabError(f"{pyproject}: not valid TOML ({err}).") from None
            return (folder, tool["litlab"]) if "litlab" in tool else None
    return None


def project_configs(start: Path | None = None) -> Path | None:
    """The configs folder the project names under ``[tool.litlab] configs``; None without."""
    found = _project(start)
    if found is None or found[1].get("configs") is None:
        return None
    folder, table = found
    path = folder / table["configs"]
    if not path.is_dir():
        raise LitlabError(
            f"{folder / 'pyproject.toml'}: [tool.litlab] configs = {table['configs']!r} is no "
            "folder."
        )
    return path


def project_trusted(start: Path | None = None) -> list[str]:
    """The packages the project trusts a checkpoint to build from (``[tool.litlab] trusted``,
    its own package in a project ``litlab new`` made; see ``run.build.saved_config``)."""
    found = _project(start)
    return [str(p) for p in found[1].get("trusted", [])] if found else []


class ProjectConfigs(SearchPathPlugin):
    """Hydra calls this for every app it starts (``hydra_plugins.litlab_project`` registers it);
    it acts on litlab's own commands only, those whose primary configs are litlab's."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from litlab.config import CONFIG_DIR

        litlab = (str(CONFIG_DIR), f"file://{CONFIG_DIR}")
        if not any(entry.path in litlab for entry in search_path.get_path()):
            return
        try:
            configs = project_configs()
        except LitlabError as err:  # raised inside Hydra, it would end in a traceback
            sys.exit(f"litlab: error: {err}")
        if configs is not None:
            search_path.prepend("litlab-project", f"file://{configs}", SearchPathQuery("main"))
