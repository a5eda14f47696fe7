"""``litlab-compare <run dirs or folders>``: the final metrics of many runs as one CSV table;
``--diff RUN_A RUN_B``: what differs between two runs (``litlab.tracking.compare`` builds both;
in Python, ``read_runs``, ``to_frame`` and ``diff_runs``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litlab import LitlabError, __version__
from litlab.cli.common import user_errors
from litlab.files import check_writable, write_text


def main(argv: list[str] | None = None) -> None:
    """``litlab-compare``: parse the command line, print or write the table."""
    from litlab.tracking.compare import __doc__ as about
    from litlab.tracking.compare import diff_runs, read_runs, to_csv
    from litlab.tracking.manifest import FILENAME

    parser = argparse.ArgumentParser(
        prog="litlab-compare", description=about, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"litlab {__version__}")
    parser.add_argument("paths", nargs="+", help="run dirs, or folders holding run dirs")
    parser.add_argument("-k", "--key", action="append", default=[], help="a config value column")
    parser.add_argument(
        "-o", "--output", help="write the CSV (or the diff) here instead of printing it"
    )
    parser.add_argument(
        "--diff", action="store_true", help="what differs between two run dirs, one line each"
    )
    parser.add_argument(
        "--plot",
        metavar="METRIC",
        help="draw METRIC against the first -k key, one point per run, into -o FILE.png",
    )
    args = parser.parse_args(argv)
    with user_errors():
        if args.plot:
            return _plot(args, read_runs(args.paths, args.key[:1]))
        if args.diff:
            text = "\n".join(diff_runs(*_two(args))) + "\n"
        else:
            rows = read_runs(args.paths, args.key)
            if not rows:
                raise LitlabError(f"no run dir ({FILENAME}) under {' '.join(args.paths)}")
            text = to_csv(rows)
    if args.output:
        with user_errors():  # a folder it cannot write to: one line
            check_writable(Path(args.output).parent, "give -o a file in a folder you can write to")
            write_text(args.output, text)
    else:
        sys.stdout.write(text)


def _plot(args: argparse.Namespace, rows: list[dict]) -> None:
    """``--plot METRIC -k KEY -o FILE.png``: the picture, saved."""
    from litlab.tracking.compare import plot_runs

    if not args.key or not args.output:
        raise LitlabError(
            f"--plot {args.plot} needs the key to plot against and a file: -k KEY -o FILE.png"
        )
    plot_runs(rows, args.plot, args.key[0]).savefig(args.output, dpi=100)
    print(f"litlab-compare: {args.plot} against {args.key[0]}: {args.output}")


def _two(args: argparse.Namespace) -> list[str]:
    """The two run dirs ``--diff`` compares; ``-k`` picks table columns, so it is refused."""
    if len(args.paths) != 2:
        raise LitlabError(
            f"--diff compares two run dirs (got {len(args.paths)}): litlab-compare --diff "
            "RUN_A RUN_B"
        )
    if args.key:
        raise LitlabError("-k chooses columns of the table; --diff shows every key that differs")
    return args.paths


if __name__ == "__main__":
    main()
