"""``python -m litlab.sweep``: the same as ``litlab-sweep``."""

from litlab.cli.scripts import sweep

sweep()
