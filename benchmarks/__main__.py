"""`make bench` / `python -m benchmarks [--quick]`: every benchmark, one table each.

`make bench-gpu` / `python -m benchmarks --gpu [--quick]`: the GPU figures alone, in about five
minutes on one GPU: time to 99% (3 seeds, probed every 10 steps), Trainer against a hand loop
at batch 128 and 512, and a whole run against a plain PyTorch script.
"""

import sys

from benchmarks import (
    data_pipeline,
    image_folder,
    overhead,
    startup,
    sweep_overhead,
    time_to_accuracy,
    whole_run,
)
from benchmarks.common import machine


def main() -> None:
    args = sys.argv[1:]
    quick = ["--quick"] if "--quick" in args else []
    print(f"machine: {machine()}")
    if "--gpu" in args:
        import torch

        if not torch.cuda.is_available() and not quick:
            sys.exit("benchmarks --gpu: no CUDA GPU here (torch.cuda.is_available() is False).")
        time_to_accuracy.main(["--no-baselines", "--every", "10", *quick])
        overhead.main(["--tasks", "mnist,mnist-512", *quick])
        whole_run.main(["--repeats", "2", *quick])
        return
    for bench in (
        startup,
        data_pipeline,
        image_folder,
        overhead,
        time_to_accuracy,
        whole_run,
        sweep_overhead,
    ):
        bench.main(quick)


if __name__ == "__main__":
    main()
