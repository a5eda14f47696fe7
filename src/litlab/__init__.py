"""litlab: a PyTorch Lightning + Hydra research template."""

__version__ = "0.1.0"


class LitlabError(Exception):
    """A mistake the user can fix: the CLI prints its message alone, without a traceback."""
