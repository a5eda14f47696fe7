"""The console scripts that pyproject.toml installs (``litlab-train`` is ``train`` here), and
``python -m litlab.cli.<command>``: each runs its command's ``main``, then ends the process
without CPython's teardown (``console``). Tests call the ``main``s themselves, in-process."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn


def console(main: Callable[[], object]) -> NoReturn:
    """``main()`` as a process: its ``SystemExit`` gives the status (0 when it returns), as for
    any Python script. Then the process ends as a normal exit does, threads joined and atexit
    handlers run (logging's, wandb's, multiprocessing's), but without tearing down every module
    it imported: with torch loaded that costs ~0.9 s after everything the run writes is
    closed (docs/benchmarks.md). An uncaught exception ends it the usual way, with its traceback.
    """
    try:
        main()
        status = 0
    except SystemExit as done:
        status = done.code
    if status is not None and not isinstance(status, int):
        print(status, file=sys.stderr)  # sys.exit("message"): the message, status 1
        status = 1
    # The interpreter's own first two steps at exit (private names, stable since Python 3.9):
    # threading's exit hooks (a pool's workers are told to stop: concurrent.futures, joblib's
    # loky) and the wait for non-daemon threads, then the atexit handlers.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (litlab-train | head): nothing to keep
            pass
    os._exit(status or 0)


def train() -> NoReturn:
    """``litlab-train``."""
    from litlab.cli.train import main

    console(main)


def eval() -> NoReturn:  # noqa: A001 - the command's name; nothing here calls the builtin
    """``litlab-eval``."""
    from litlab.cli.eval import main

    console(main)


def predict() -> NoReturn:
    """``litlab-predict``."""
    from litlab.cli.predict import main

    console(main)


def export() -> NoReturn:
    """``litlab-export``."""
    from litlab.cli.export import main

    console(main)


def sweep() -> NoReturn:
    """``litlab-sweep``."""
    from litlab.cli.sweep import main

    console(main)
