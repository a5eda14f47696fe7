"""litlab: a PyTorch Lightning + Hydra research template."""

__version__ = "0.1.0"


class LitlabError(Exception):
    """A mistake the user can fix: the CLI prints its message alone, without a traceback."""


class Interrupted(SystemExit):
    """Ctrl+C (or SIGTERM) stopped the run; it is recorded ``interrupted`` and can be resumed.

    A ``SystemExit`` with the shell's status for SIGINT, 130: Hydra's multirun lets it through,
    so a grid stops too instead of starting its next job.
    """

    def __init__(self, run_dir: str):
        super().__init__(130)
        self.run_dir = run_dir


def first_line(err: BaseException | str) -> str:
    """An error as one line, for messages that must fit on one: ``ValueError: bad value``.

    A ``LitlabError`` is already written for the user and keeps its words alone; a string (an
    error recorded in run.json) is cut to its first line.
    """
    text = (str(err).strip().splitlines() or [""])[0].strip()
    if isinstance(err, str | LitlabError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def __getattr__(name: str):
    # litlab.load pulls in torch and Lightning: only when it is asked for, so that the CLIs'
    # --help and config checks stay fast.
    if name == "load":
        from litlab.inference.loading import load

        return load
    raise AttributeError(f"module 'litlab' has no attribute {name!r}")
