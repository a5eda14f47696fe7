"""MNIST batches per second: litlab's in-memory batches vs per-sample torchvision transforms.

python -m benchmarks.data_pipeline [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.baselines import mnist_loaders
from benchmarks.common import DATA_DIR, interleaved, med, table
from litlab.data import MNISTDataModule


def timed(loader, transform, limit: int) -> dict:
    n, t0 = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        if i == limit:
            break
        x, _ = transform(batch)
        n += len(x)
    return {"rate": n / (time.perf_counter() - t0)}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    limit = 10 if args.quick else args.batches
    dm = MNISTDataModule(
        DATA_DIR, batch_size=args.batch_size, download=False, val_size=200 if args.quick else 5000
    )
    dm.setup()
    tv_loader, _ = mnist_loaders(DATA_DIR, args.batch_size, seed=0)
    res = interleaved(
        {
            "litlab": lambda: timed(
                dm.train_dataloader(), lambda b: dm.on_after_batch_transfer(b, 0), limit
            ),
            "torchvision": lambda: timed(tv_loader, lambda b: b, limit),
        },
        args.repeats,
    )
    lit, tv = med(res["litlab"], "rate"), med(res["torchvision"], "rate")
    return table(
        f"Data pipeline: samples/s, batch {args.batch_size}, {limit} batches",
        ["pipeline", "samples/s", "ratio"],
        [
            ["litlab TensorLoader + on-device normalise", lit, lit / tv],
            ["torchvision transforms + DataLoader", tv, 1.0],
        ],
    )


if __name__ == "__main__":
    main()
