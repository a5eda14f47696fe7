"""`make bench` / `python -m benchmarks [--quick]`: every benchmark, one table each."""

import sys

from benchmarks import data_pipeline, overhead, startup, time_to_accuracy
from benchmarks.common import machine


def main() -> None:
    quick = ["--quick"] if "--quick" in sys.argv[1:] else []
    print(f"machine: {machine()}")
    for bench in (startup, data_pipeline, overhead, time_to_accuracy):
        bench.main(quick)


if __name__ == "__main__":
    main()
