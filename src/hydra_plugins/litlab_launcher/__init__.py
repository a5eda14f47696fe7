"""Hydra loads launchers only from the ``hydra_plugins`` namespace; litlab's lives in
``litlab.sweep.slurm`` and is registered here under that namespace."""

from litlab.sweep.slurm import SlurmLauncher as _Launcher


class SlurmLauncher(_Launcher):
    """``hydra/launcher=slurm`` (configs/hydra/launcher/slurm.yaml)."""
