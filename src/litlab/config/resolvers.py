"""The ``${litlab_...:}`` resolvers the configs use: run dirs, mixed precision, wandb's mode."""

from __future__ import annotations

from pathlib import Path

import omegaconf
from omegaconf import OmegaConf

LATEST = "latest"  # ckpt_path=latest: the newest run of the experiment that has a checkpoint


def latest_run(runs: Path) -> Path | None:
    """The newest run dir in ``runs`` (``logs/<experiment>/runs``) that has a checkpoint, if
    any. Run dirs are named by the time they started, so the newest sorts last."""
    found = sorted(p.parent.parent for p in runs.glob("*/checkpoints/*.ckpt") if p.is_file())
    return found[-1] if found else None


def run_dir(ckpt_path: str | None, new_dir: str) -> str:
    """The run directory: a resumed run continues in the directory of the run it resumes."""
    if not ckpt_path:
        return new_dir
    if ckpt_path == LATEST:  # new_dir is <log dir>/<experiment>/runs/<time>
        # None found: a new dir, which the run refuses in one line (run.checkpoints.latest)
        # and then removes (cli.common.discard_empty_run_dir); Hydra would show a traceback.
        return str(latest_run(Path(new_dir).parent) or new_dir)
    path = Path(ckpt_path).expanduser().resolve()
    if path.suffix == ".ckpt":  # <run>/checkpoints/last.ckpt
        return str(path.parent.parent)
    return str(path)


def hydra_subdir(ckpt_path: str | None) -> str | None:
    """Where Hydra saves the composed config: ``.hydra/`` of a new run. A resume saves none,
    so the run's own ``.hydra/`` keeps the command that started it; each resume's command and
    overrides go to ``history`` in run.json instead."""
    return None if ckpt_path else ".hydra"


def fast_precision(accelerator: str) -> str:
    """bf16 mixed precision where the hardware runs it natively, else full fp32.

    CPUs with AMX or AVX512-BF16 run bf16 convolutions several times faster than fp32; on
    others bf16 is emulated and slower, so they keep fp32.
    """
    if accelerator in ("auto", "gpu", "cuda"):
        import torch

        if torch.cuda.is_available():
            return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if accelerator in ("auto", "cpu"):
        try:
            flags = Path("/proc/cpuinfo").read_text().split()
        except OSError:
            flags = []
        if "amx_bf16" in flags or "avx512_bf16" in flags:
            return "bf16-mixed"
    return "32-true"


def wandb_mode() -> str:
    """``${litlab_wandb_mode:}``: see ``litlab.tracking.wandb_run.wandb_mode``."""
    # Imports Lightning: only once a config is resolved, never for --help.
    from litlab.tracking.wandb_run import wandb_mode

    return wandb_mode()


def gpu_count() -> int:
    """``${litlab_gpu_count:}``: the GPUs this process may use, at least 1 (the jobs a parallel
    grid runs at once: configs/hydra/launcher/parallel.yaml)."""
    from litlab.tracking.provenance import visible_gpus

    return max(1, len(visible_gpus()))


def register_resolvers() -> None:
    """Make the ``${litlab_...:}`` resolvers known to OmegaConf (idempotent)."""
    # OmegaConf 2.4 renames register_new_resolver (2.3 has an older API under the new name).
    new = tuple(int(n) for n in omegaconf.__version__.split(".")[:2]) >= (2, 4)
    register = OmegaConf.register_resolver if new else OmegaConf.register_new_resolver
    register("litlab_run_dir", run_dir, replace=True)
    register("litlab_hydra_subdir", hydra_subdir, replace=True)
    register("litlab_fast_precision", fast_precision, replace=True)
    register("litlab_wandb_mode", wandb_mode, replace=True)
    register("litlab_gpu_count", gpu_count, replace=True)
