"""Hydra finds search-path plugins only in the ``hydra_plugins`` namespace: this one puts a
litlab project's configs before litlab's own (``litlab.config.project``)."""

from litlab.config.project import ProjectConfigs

__all__ = ["ProjectConfigs"]
