"""What a run records about itself: the command, the overrides, the code, the versions (and
every installed package's), the host, the hardware and the model's size."""

from __future__ import annotations

import functools
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import litlab
from litlab.tracking.redaction import Public, redact_overrides


def overrides() -> list[str]:
    """The command-line overrides of this run, as Hydra parsed them (secrets hidden)."""
    from hydra.core.hydra_config import HydraConfig

    try:
        return redact_overrides(list(HydraConfig.get().overrides.task))
    except Exception:  # no Hydra app around (a config built by hand)
        return []


_typed_command: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """The command the user typed, for a process that runs on its behalf (a SLURM job)."""
    global _typed_command
    _typed_command = list(argv)


def command_line(argv: list[str] | None = None) -> list[str]:
    """The command that started this run, program name first, with its secrets hidden."""
    argv = list(argv if argv is not None else (_typed_command or sys.argv))
    if not argv:
        return []
    prog = [Path(argv[0]).name]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if prog == ["__main__.py"] and spec:  # python -m litlab.sweep
        prog = ["python", "-m", spec.name.removesuffix(".__main__")]
    return [*prog, *redact_overrides(argv[1:])]


def shell_command(argv: list[str] | None = None) -> str:
    """``command_line`` as one string, quoted for a shell."""
    return shlex.join(command_line(argv))


def _git(*args: str) -> str | None:
    root = Path(litlab.__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info() -> dict:
    """The commit of the code that ran, and whether uncommitted changes ran with it."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict:
    """The versions of Python, torch, Lightning, litlab, CUDA (and wandb, if loaded)."""
    import lightning
    import torch

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "litlab": litlab.__version__,
        "cuda": torch.version.cuda,
    }
    if "wandb" in sys.modules:
        out["wandb"] = sys.modules["wandb"].__version__
    return out


def packages() -> Public:
    """Every installed distribution and its version, by its normalized name (``torch``,
    ``typing-extensions``): the whole environment, which ``litlab-compare --diff`` compares.
    Where one is installed twice, the one found first on ``sys.path``: the one imported.
    Read once per process: a sweep's trials run the code it imported. ``Public``: records
    keep each version, also of a package named like a secret."""
    return Public(_packages())


_HEADER = re.compile(r"^(Name|Version):[ \t]*(.*?)[ \t]*$", re.MULTILINE)


@functools.cache
def _packages() -> dict[str, str]:
    from importlib.metadata import distributions

    # Name and Version are single-line headers at the top of the metadata: found with a regular
    # expression in the header block, ~4x faster than the email parser (~40 ms of every run's
    # start on 2 cores, 190 distributions), itself 3-5x faster than ``dist.metadata``, which
    # parses the long description too.
    found: dict[str, str] = {}
    for dist in distributions():
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        meta = dict(_HEADER.findall(text.split("\n\n", 1)[0]))
        if meta.get("Name"):
            found.setdefault(re.sub(r"[-_.]+", "-", meta["Name"]).lower(), meta.get("Version"))
    return dict(sorted(found.items()))


def host_info() -> dict:
    """The machine and process the run ran in."""
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "pid": os.getpid()}


def hardware(trainer) -> dict:
    """What the trainer runs on: accelerator, devices, nodes, strategy, precision."""
    return {
        "accelerator": type(trainer.accelerator).__name__.removesuffix("Accelerator").lower(),
        "devices": trainer.num_devices,
        "num_nodes": trainer.num_nodes,
        "world_size": trainer.world_size,
        "strategy": type(trainer.strategy).__name__,
        "precision": str(trainer.precision),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),  # which GPUs, if set
    }


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES``'s list where it is set, else
    every GPU of the machine (counted through NVML, which leaves CUDA unstarted)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def parameter_counts(model) -> dict:
    """The model's total and trainable parameter counts."""
    params = list(model.parameters())
    return {
        "total": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
    }


def gather() -> dict:
    """Everything a run records about where it comes from, gathered once when it starts:
    run.json keeps it, and wandb gets the same (with the hardware and the model's size)."""
    return {
        "command": command_line(),
        "overrides": overrides(),
        "cwd": os.getcwd(),
        "git": git_info(),
        "versions": versions(),
        "packages": packages(),
        "host": host_info(),
    }
