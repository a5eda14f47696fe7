"""Start-up: `litlab-train --help`, and process start to the first training step.

python -m benchmarks.startup [--repeats 5] [--against OTHER/src]

``--against`` times another checkout's litlab to the first step in the same rounds (a baseline).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, interleaved, med, table, wall

BIN = Path(sys.executable).parent


def to_first_step(cmd: list[str], stamp: str, src: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, str(ROOT)])} if src else None
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
    return {"s": float(Path(stamp).read_text()) - t0}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--against", help="another checkout's src/ folder, timed alongside (baseline)")
    args = p.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    tmp = tempfile.mkdtemp()
    help_res = interleaved(
        {
            "python": lambda: wall([sys.executable, "-c", "pass"]),
            "help": lambda: wall([str(BIN / "litlab-train"), "--help"]),
        },
        repeats,
    )
    litlab = [
        sys.executable,
        "-m",
        "litlab.cli.train",
        f"paths.data_dir={DATA_DIR}",
        f"paths.log_dir={tmp}/logs",
        "logger=none",
        "+callbacks.first._target_=benchmarks.probes.FirstStep",
        f"+callbacks.first.out={tmp}/l",
        *(["data.val_size=200"] if args.quick else []),
    ]
    contenders = {
        "plain": lambda: to_first_step(
            [
                sys.executable,
                "-m",
                "benchmarks.plain_mnist",
                DATA_DIR,
                *(["--val-size", "200"] if args.quick else []),
                "--first-step",
                f"{tmp}/p",
            ],
            f"{tmp}/p",
        ),
        "litlab": lambda: to_first_step(litlab, f"{tmp}/l"),
    }
    if args.against:
        contenders["base"] = lambda: to_first_step(litlab, f"{tmp}/l", args.against)
    step_res = interleaved(contenders, repeats)
    plain, lit = med(step_res["plain"], "s"), med(step_res["litlab"], "s")
    rows = [
        ["python -c pass", med(help_res["python"], "s"), ""],
        ["litlab-train --help", med(help_res["help"], "s"), ""],
        ["plain PyTorch script: start to first step", plain, ""],
        ["litlab-train: start to first step", lit, f"+{lit - plain:.2f} s"],
    ]
    if args.against:
        base = med(step_res["base"], "s")
        rows.append([f"the same, {args.against}", base, f"+{base - plain:.2f} s"])
    return table("Start-up (median wall seconds)", ["what", "seconds", "vs baseline"], rows)


if __name__ == "__main__":
    main()
