"""Hydra loads launchers only from the ``hydra_plugins`` namespace, and imports every module in it
whenever a Hydra app starts, every litlab command included. litlab's SLURM launcher lives in
``litlab.sweep.slurm`` (it needs the [slurm] extra) and is imported only when a grid uses it."""

from hydra.plugins.launcher import Launcher


class SlurmLauncher(Launcher):
    """``hydra/launcher=slurm`` (configs/hydra/launcher/slurm.yaml)."""

    def __new__(cls, **params):
        # Hydra instantiates the class it found here; the launcher it gets is litlab.sweep.slurm's.
        from litlab.sweep.slurm import SlurmLauncher

        return SlurmLauncher(**params)

    # Never called (``__new__`` returns the real launcher), but Hydra registers only plugin
    # classes that are not abstract, so the stub implements Launcher's two abstract methods.
    def setup(self, **kwargs) -> None:
        raise NotImplementedError

    def launch(self, job_overrides, initial_job_idx):
        raise NotImplementedError
