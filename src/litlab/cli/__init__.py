"""The console scripts, one module each (``litlab-train`` is ``cli/train.py``), kept thin: they
parse the command and hand the config to ``litlab.run`` or ``litlab.inference``."""
