"""Execute the notebooks and stamp them, so that committed outputs provably match their code.

``python notebooks/lessons/notebooks.py`` runs every notebook in ``notebooks/`` top to bottom (or
the ones named on the command line), saves it with its outputs, and records in its metadata a
hash of its code cells. ``tests/lessons/test_notebooks.py`` recomputes that hash: a notebook
whose code was edited after its outputs were made fails until it is executed again with this
command.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import nbformat

NOTEBOOK_DIR = Path(__file__).resolve().parents[1]  # a clone's notebooks/, holding lessons/
STAMP = "litlab"  # the notebook-level metadata key holding {"code_sha256": ...}
QUICK = "LITLAB_LESSON_QUICK"  # set by the tests: lessons that train long run a few batches
# For kernels started in a temporary directory: they import `lessons` as one in notebooks/ does.
KERNEL_PYTHONPATH = os.pathsep.join(filter(None, [str(NOTEBOOK_DIR), os.environ.get("PYTHONPATH")]))


def code_hash(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of the code cells' sources, in order; markdown and outputs are not part of it."""
    sources = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def stamped_hash(nb: nbformat.NotebookNode) -> str | None:
    """The code hash a notebook was stamped with when it last ran (None if never)."""
    return nb.metadata.get(STAMP, {}).get("code_sha256")


def execute(path: Path, timeout: int = 600) -> float:
    """Run ``path`` top to bottom in a fresh kernel, save it with outputs; returns seconds.

    The kernel starts in a temporary directory, so the files a lesson writes stay out of the
    repository, as they do when the tests execute it.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    os.environ.pop(QUICK, None)  # saved outputs always come from full runs
    os.environ["PYTHONPATH"] = KERNEL_PYTHONPATH
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="litlab-nb-") as workdir:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,  # per-cell timestamps would change the file on every run
            resources={"metadata": {"path": workdir}},
        ).execute()
    seconds = time.perf_counter() - start
    nb.metadata[STAMP] = {"code_sha256": code_hash(nb)}
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> None:
    """``python notebooks/lessons/notebooks.py [notebooks]``: execute and stamp them."""
    parser = argparse.ArgumentParser(
        prog="python notebooks/lessons/notebooks.py",
        description="Execute notebooks top to bottom and save them with their outputs.",
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)"
    )
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    for path in args.paths or sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        print(f"{path}: executed and saved in {execute(path, args.timeout):.1f} s", flush=True)


if __name__ == "__main__":
    main()
