"""Time to 99% MNIST test accuracy: litlab-train against two baselines, on the real data.

python -m benchmarks.time_to_accuracy [--seeds 0,1,2] [--every 100] [--no-baselines] [--quick]

Everything trains where ``accelerator: auto`` puts it: the GPU when there is one. The clock
waits for the GPU before each reading.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

from benchmarks.baselines import train_baseline
from benchmarks.common import DATA_DIR, ROOT, device, med, table

TARGET = 0.99


def first_at(trace: list, target: float) -> float | None:
    return next((sec for sec, _, acc in trace if acc >= target), None)


def litlab_run(seed: int, every: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/clock.json"
        cmd = [
            sys.executable,
            "-m",
            "litlab.cli.train",
            f"paths.data_dir={DATA_DIR}",
            f"paths.log_dir={tmp}/logs",
            f"seed={seed}",
            "logger=none",
            "callbacks.progress_bar.refresh_rate=0",
            "+callbacks.clock._target_=benchmarks.probes.TrainClock",
            f"+callbacks.clock.out={out}",
            f"+callbacks.clock.every_n_steps={every}",
            *extra,
        ]
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        result = json.load(open(out))
    result["wall"] = wall - result["probe_seconds"]
    return result


def summarize(name: str, runs: list[dict]) -> list:
    hits = [first_at(r["trace"], TARGET) for r in runs]
    finals = [r["trace"][-1][2] for r in runs]
    reached = [h for h in hits if h is not None]
    return [
        name,
        f"{len(reached)}/{len(runs)}",
        med([{"t": h} for h in reached], "t") if reached else "never",
        f"{100 * sum(finals) / len(finals):.2f} (min {100 * min(finals):.2f})",
        med(runs, "train_seconds"),
        med(runs, "wall"),
    ]


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--every", type=int, default=100, help="probe the test set every N steps")
    p.add_argument("--classic-epochs", type=int, default=8, help="cap; stops at 99%%")
    p.add_argument("--template-epochs", type=int, default=10)
    p.add_argument("--no-baselines", action="store_true", help="litlab's recipe alone")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")][: 1 if args.quick else None]
    quick = (
        [
            "trainer.limit_train_batches=20",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=2",
            "data.val_size=200",
        ]
        if args.quick
        else []
    )
    max_steps = 20 if args.quick else None
    every = 10 if args.quick else args.every
    rows, ratios = [], {}
    lit = []
    for seed in seeds:
        lit.append(litlab_run(seed, every, quick))
    rows.append(summarize("litlab-train (mnist experiment)", lit))
    baselines = (
        ()
        if args.no_baselines
        else (
            ("classic", args.classic_epochs),
            ("template", args.template_epochs),
        )
    )
    for kind, epochs in baselines:
        runs = []
        for seed in seeds[:1]:  # the baselines are slow: one seed each
            t0 = time.perf_counter()
            r = train_baseline(kind, DATA_DIR, seed, epochs, every, TARGET, max_steps)
            r["wall"] = time.perf_counter() - t0
            runs.append(r)
        rows.append(
            summarize(
                {
                    "classic": "(a) pytorch/examples CNN, Adadelta",
                    "template": "(b) template MLP + per-sample transforms",
                }[kind],
                runs,
            )
        )
        ratios[kind] = rows[-1][2]
    text = table(
        f"Time to 99% test accuracy (MNIST, {device().type.upper()}, probed every {every} steps)",
        [
            "recipe",
            "runs reaching 99%",
            "train s to 99% (median)",
            "final test acc % (mean)",
            "train s (median)",
            "wall s (median)",
        ],
        rows,
    )
    lit_t, classic_t = rows[0][2], ratios.get("classic")
    if isinstance(lit_t, float) and isinstance(classic_t, float):
        line = f"\nratio litlab / (a) in training seconds to 99%: {lit_t / classic_t:.3f}"
        print(line)
        text += "\n" + line
    return text


if __name__ == "__main__":
    main()
