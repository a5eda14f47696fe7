"""Which GPU each process of a sweep trains on, on a machine with several, so that parallel
runs spread over the GPUs instead of all landing on GPU 0:

- ``litlab-sweep``'s worker ``i`` (``hparams_search.n_jobs``) gets GPU ``i mod n`` through
  ``CUDA_VISIBLE_DEVICES``, set before it starts CUDA;
- a parallel grid's job (``hydra/launcher=parallel``, Hydra's joblib launcher, whose worker
  processes run one job after another) takes a GPU no other job of the grid holds, as
  ``trainer.devices=[i]``, for as long as it runs (``claim_gpu``).
"""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

from litlab.tracking.provenance import visible_gpus

__all__ = ["claim_gpu", "visible_gpus", "worker_env"]

ENV = "CUDA_VISIBLE_DEVICES"  # torch reads it when CUDA starts


def worker_env(worker: int, gpus: list[str]) -> dict[str, str]:
    """What gives worker ``worker`` a GPU of its own (nothing with one GPU or none); with more
    workers than GPUs, they take turns round the list."""
    return {ENV: gpus[worker % len(gpus)]} if len(gpus) > 1 else {}


@contextlib.contextmanager
def claim_gpu(lock_dir: Path, count: int, poll: float = 1.0) -> Iterator[int]:
    """The index of one of ``count`` GPUs that no other holder of ``lock_dir`` holds, held
    until the block ends (a lock file per GPU: a job that dies lets go of it with its process);
    with every GPU held, it waits for one."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for index in range(count):
            file = open(lock_dir / f"gpu{index}.lock", "w")  # held until the job ends
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.close()
                continue
            try:
                yield index
            finally:
                file.close()  # closing releases the lock
            return
        time.sleep(poll)
