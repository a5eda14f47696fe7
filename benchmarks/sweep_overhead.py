"""What a sweep costs per trial beyond training and testing it.

``litlab-sweep experiment=logistic hparams_search=logistic`` (6 trials, 5 epochs each), once
with the default logger (wandb, offline) and once with ``logger=csv``, interleaved. For every
trial: its wall time as Optuna records it (``datetime_start`` to ``datetime_complete``,
microseconds) minus the seconds inside ``trainer.fit`` and ``trainer.test`` (timed by
``benchmarks.probes.FitTestClock``); and the gap from one trial's end to the next one's start
(Optuna's bookkeeping, garbage collection). Their sum is what each trial costs on top of its
training. Medians: over a sweep's trials, then over the interleaved repeats. ``--against
../main/src`` times another checkout's litlab in the same rounds, as the baseline of a change.

    python -m benchmarks.sweep_overhead [--repeats 3] [--trials 6] [--epochs 5] [--against SRC]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.common import interleaved, med, table, wall


def sweep(logger: str | None, trials: int, epochs: int, src: str | None = None) -> dict:
    tmp = Path(tempfile.mkdtemp())
    clock = tmp / "clock.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "litlab.cli.sweep",
        "experiment=logistic",
        "hparams_search=logistic",
        f"hparams_search.n_trials={trials}",
        f"trainer.max_epochs={epochs}",
        f"paths.log_dir={tmp}/logs",
        "callbacks.progress_bar.refresh_rate=0",
        "+callbacks.clock._target_=benchmarks.probes.FitTestClock",
        f"+callbacks.clock.out={clock}",
        *([f"logger={logger}"] if logger else []),
    ]
    total = wall(cmd, src)["s"]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    (db,) = tmp.glob("logs/*/sweeps/*/optuna.db")
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{db}")
    done = sorted((t for t in study.trials if t.datetime_complete), key=lambda t: t.datetime_start)
    spans = [(t.datetime_start.timestamp(), t.datetime_complete.timestamp()) for t in done]
    stages = [json.loads(line) for line in clock.read_text().splitlines()]
    overhead, train = [], []
    for start, end in spans:
        inside = sum(s["end"] - s["start"] for s in stages if start <= s["start"] < end)
        overhead.append(end - start - inside)
        train.append(inside)
    gaps = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False)]
    return {
        "s": total,
        "trials": len(done),
        "trial": statistics.median(overhead),
        "gap": statistics.median(gaps) if gaps else 0.0,
        "fit_test": statistics.median(train),
    }


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--against", help="another checkout's src/ folder, timed alongside (baseline)")
    args = p.parse_args(argv)
    repeats, trials = (1, 3) if args.quick else (args.repeats, args.trials)
    contenders = {
        "wandb": lambda: sweep(None, trials, args.epochs),
        "csv": lambda: sweep("csv", trials, args.epochs),
    }
    labels = [("wandb", "default (wandb offline)"), ("csv", "logger=csv")]
    if args.against:
        contenders["wandb-base"] = lambda: sweep(None, trials, args.epochs, args.against)
        contenders["csv-base"] = lambda: sweep("csv", trials, args.epochs, args.against)
        labels += [
            ("wandb-base", f"default, {args.against}"),
            ("csv-base", f"logger=csv, {args.against}"),
        ]
    res = interleaved(contenders, repeats)
    rows = []
    for name, label in labels:
        trial, gap = med(res[name], "trial"), med(res[name], "gap")
        rows.append(
            [label, med(res[name], "s"), med(res[name], "fit_test"), trial, gap, trial + gap]
        )
    return table(
        f"Sweep overhead per trial: litlab-sweep experiment=logistic hparams_search=logistic, "
        f"{trials} trials of {args.epochs} epochs (medians of {repeats} interleaved repeats)",
        [
            "logger",
            "whole sweep s",
            "fit + test s",
            "trial - fit - test s",
            "between trials s",
            "overhead per trial s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
