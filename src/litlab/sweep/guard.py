"""``litlab-train -m hparams_search=...`` is how other templates start Optuna; here the search is
``litlab-sweep``'s job. Without this check litlab-train would quietly run one plain job."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback

from litlab.tracking.provenance import shell_command


def sweep_command(argv: list[str]) -> str:
    """The same command as litlab-sweep takes it (secrets hidden)."""
    rest = [a for a in argv[1:] if a not in ("-m", "--multirun")]
    return shell_command(["litlab-sweep", *rest])


class RefuseSearch(Callback):
    """Registered in configs/hydra/default.yaml: stops before any job starts."""

    def _check(self, config, **kwargs: Any) -> None:
        if config.get("hparams_search"):
            # sys.exit, not LitlabError: Hydra reports a callback's exception with a traceback
            # hint; SystemExit passes through it as this one line.
            sys.exit(
                "litlab-train: error: hparams_search is a search space for litlab-sweep, which "
                f"runs the Optuna search; litlab-train would run one plain job. Run: "
                f"{sweep_command(sys.argv)}"
            )

    on_run_start = on_multirun_start = _check
