"""A whole MNIST run, start to exit: `litlab-train` against a plain PyTorch script doing the same.

The plain script (``benchmarks/plain_mnist.py``) imports torch and torchvision, parses MNIST,
trains litlab's recipe for one epoch on the same device in the same precision, and scores the
validation and test sets. litlab-train runs twice: as `make train` does (wandb offline, figures,
checkpoints, testing the best checkpoint) and lean (no logger, no figures).

    python -m benchmarks.whole_run [--repeats 3] [--quick] [--against OTHER/src]

``--against`` times another checkout's litlab-train, as `make train` runs it, in the same rounds
(the baseline of a change).
"""

from __future__ import annotations

import argparse
import sys
import tempfile

from benchmarks.common import DATA_DIR, device, interleaved, med, table, wall

QUICK_LITLAB = [
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "data.val_size=200",
]


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--against", help="another checkout's src/ folder, timed alongside (baseline)")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    tmp = tempfile.mkdtemp()
    litlab = [
        sys.executable,
        "-m",
        "litlab.cli.train",
        f"paths.data_dir={DATA_DIR}",
        f"paths.log_dir={tmp}/logs",
        "callbacks.progress_bar.refresh_rate=0",
        *(QUICK_LITLAB if args.quick else []),
    ]
    plain = [sys.executable, "-m", "benchmarks.plain_mnist", DATA_DIR]
    plain += ["--limit", "20", "--val-size", "200"] if args.quick else []
    contenders = {
        "plain": lambda: wall(plain),
        "default": lambda: wall(litlab),
        "lean": lambda: wall([*litlab, "logger=none", "callbacks.figures=null"]),
    }
    if args.against:
        contenders["base"] = lambda: wall(litlab, args.against)
    res = interleaved(contenders, repeats)
    base = med(res["plain"], "s")
    rows = [["plain PyTorch script", base, ""]]
    labels = {
        "default": "litlab-train (as make train: wandb offline, figures)",
        "lean": "litlab-train logger=none callbacks.figures=null",
        "base": f"the same as make train, {args.against}",
    }
    for name, label in labels.items():
        if name not in res:
            continue
        sec = med(res[name], "s")
        rows.append([label, sec, f"+{sec - base:.2f} s"])
    return table(
        f"Whole MNIST run on {device().type.upper()}, start to exit (median wall seconds)",
        ["command", "seconds", "vs plain"],
        rows,
    )


if __name__ == "__main__":
    main()
