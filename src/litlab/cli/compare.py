"""``litlab-compare <run dirs or folders>``: the final metrics of many runs as one CSV table
(``litlab.tracking.compare`` builds it; in Python, ``read_runs`` and ``to_frame``)."""

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
    from litlab.tracking.compare import read_runs, to_csv
    from litlab.tracking.manifest import FILENAME

    parser = argparse.ArgumentParser(
        prog="litlab-compare", description=about, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"litlab {__version__}")
    parser.add_argument("paths", nargs="+", help="run dirs, or folders holding run dirs")
    parser.add_argument("-k", "--key", action="append", default=[], help="a config value column")
    parser.add_argument("-o", "--output", help="write the CSV here instead of printing it")
    args = parser.parse_args(argv)
    with user_errors():
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


if __name__ == "__main__":
    main()
