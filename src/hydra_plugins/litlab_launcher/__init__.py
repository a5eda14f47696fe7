"""Hydra loads launchers only from the ``hydra_plugins`` namespace; litlab's lives in
``litlab.sweep.slurm`` and is registered here under that namespace."""

try:
    from litlab.sweep.slurm import SlurmLauncher as _Launcher
except ImportError:  # no hydra-submitit-launcher (pip install -e .[slurm]): no SLURM launcher
    pass
else:

    class SlurmLauncher(_Launcher):
        """``hydra/launcher=slurm`` (configs/hydra/launcher/slurm.yaml)."""
