"""Helpers shared by the benchmarks: interleaved repeats, medians, tables, real MNIST."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = os.environ.get("LITLAB_DATA_DIR", str(ROOT.parent / "shared" / "data"))


def wall(cmd: list[str], src: str | None = None) -> dict:
    """Seconds a command takes, start to exit; wandb offline and quiet, as in the tests. ``src``:
    another checkout's ``src/`` folder, to time its litlab (a baseline) instead of this one's."""
    import subprocess

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, str(ROOT)])
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return {"s": time.perf_counter() - t0}


def interleaved(fns: dict[str, Callable[[], dict]], repeats: int) -> dict[str, list[dict]]:
    """Run every contender once per round, rounds in a row, so drifting load hits all alike.
    Each round starts one contender later (round 2: the second first, ...): in a fixed order one
    contender always runs right after the same other, and whatever that one leaves behind (a
    wandb service shutting down, files being written back) falls on it alone."""
    results: dict[str, list[dict]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(fns[name]())
    return results


def med(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A Markdown table, printed and returned (so it can go straight into docs/benchmarks.md)."""

    def fmt(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    lines = [f"\n### {title}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def device():
    """Where the benchmarks train: the GPU when there is one (as ``accelerator: auto`` picks)."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    """Wait for the GPU's queued work: a clock read before it would time only the launches."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in open("/proc/cpuinfo")
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    gpu = (
        f"GPU {torch.cuda.get_device_name()} (CUDA {torch.version.cuda}), "
        if torch.cuda.is_available()
        else "no GPU, "
    )
    return (
        f"{gpu}{cpu}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {sys.version.split()[0]}"
    )


class Clock:
    """A stopwatch that can be paused, for training time that leaves evaluation out. It waits
    for the GPU at each start and stop, so queued kernels count where they ran."""

    def __init__(self):
        self.total, self.since = 0.0, None

    def start(self):
        sync()
        self.since = time.perf_counter()

    def stop(self):
        sync()
        if self.since is not None:
            self.total += time.perf_counter() - self.since
            self.since = None
