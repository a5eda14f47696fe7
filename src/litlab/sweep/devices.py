"""Which GPU each worker of ``litlab-sweep`` trains on, on a machine with several: worker ``i``
gets GPU ``i mod n`` through ``CUDA_VISIBLE_DEVICES``, set before it starts CUDA, so parallel
trials (``hparams_search.n_jobs``) spread over the GPUs instead of all landing on GPU 0."""

from __future__ import annotations

import os

ENV = "CUDA_VISIBLE_DEVICES"


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES``'s list where it is set, else
    every GPU of the machine (counted through NVML, which leaves CUDA unstarted)."""
    listed = os.environ.get(ENV)
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def worker_env(worker: int, gpus: list[str]) -> dict[str, str]:
    """What gives worker ``worker`` a GPU of its own (nothing with one GPU or none); with more
    workers than GPUs, they take turns round the list."""
    return {ENV: gpus[worker % len(gpus)]} if len(gpus) > 1 else {}
