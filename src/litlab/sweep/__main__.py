"""``python -m litlab.sweep``: the same as ``litlab-sweep``."""

from litlab.cli.sweep import main

main()
