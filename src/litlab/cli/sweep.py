"""``litlab-sweep``: an Optuna search (or a W&B sweep file) from a ``hparams_search`` config.

litlab-sweep experiment=linear hparams_search=linear [hparams_search.n_trials=40] [key=value]
litlab-sweep experiment=linear hparams_search=linear --wandb sweep.yaml
"""

from __future__ import annotations

import argparse
import os
import sys

from litlab import LitlabError, __version__
from litlab.cli.common import (
    interrupted_exit,
    load_torch,
    quiet_lightning,
    quote_paths,
    user_errors,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="litlab-sweep",
        description="Optuna search over a configs/hparams_search/ space; every trial is a "
        "litlab run. Rerun the same command to continue the study.",
    )
    p.add_argument("--version", action="version", version=f"litlab {__version__}")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for litlab-train")
    p.add_argument(
        "--wandb", metavar="FILE", help="write a W&B sweep config for this space and exit"
    )
    return p


def run(argv: list[str]) -> None:
    """Plan the sweep, start the workers, optimize, and write the results table."""
    from litlab.sweep import devices, interrupt
    from litlab.sweep import optuna_search as search
    from litlab.sweep.storage import DatabaseGone
    from litlab.tracking.redaction import redact_text

    args = _parser().parse_args(argv)
    sweep = search.plan(quote_paths(args.overrides))  # paths with spaces, as litlab-train
    if args.wandb:
        from litlab.sweep import wandb_sweep

        print(f"W&B sweep config: {wandb_sweep.write(sweep, args.wandb)}")
        return
    search.check_trial_devices(sweep.cfg)  # before any trial, not once per trial
    load_torch()
    from litlab.tracking import wandb_run  # Lightning's loaded now

    wandb_run.check_modes(sweep.cfg.get("logger"))  # each trial would refuse it, one by one
    worker = int(os.environ.get(search.WORKER_ENV, "0"))
    n_jobs = int(sweep.cfg.hparams_search.n_jobs)
    workers: list = []
    gpus = devices.visible_gpus() if worker == 0 and n_jobs > 1 else []
    with interrupt.stop_on_signal(workers):
        if worker == 0:
            print(f"study {sweep.name}: {redact_text(sweep.storage_url)}  (sweep dir: {sweep.dir})")
        study = search.open_study(sweep)  # the first worker creates it; the rest join
        if worker == 0:
            workers += search.start_workers(argv, n_jobs - 1, gpus)
            os.environ.update(devices.worker_env(0, gpus))  # CUDA has not started here yet
            if len(gpus) > 1:
                print(
                    f"{n_jobs} workers on GPUs {', '.join(gpus)}: worker i on GPU i mod {len(gpus)}"
                )
        stopped, gone = False, None
        try:
            search.optimize(sweep, study)
        except KeyboardInterrupt:
            stopped = True
        except DatabaseGone as err:
            if not interrupt.requested():
                raise
            gone = err  # Ctrl+C ended the wait for the database: nothing more can be read
        finally:
            failed = [w.args for w in workers if w.wait() != 0]
        stopped = stopped or interrupt.requested()
    _end(argv, sweep, study, worker, stopped, gone, failed)


def _end(argv, sweep, study, worker: int, stopped: bool, gone, failed: list) -> None:
    """The results table (the first worker's), then how the command ends: interrupted (status
    130, saying what to run next), a worker failed, or done. ``gone``: Ctrl+C ended a wait for
    the study's database (``DatabaseGone``), which then holds no results to read."""
    from litlab.sweep import optuna_search as search
    from litlab.tracking.provenance import shell_command

    if worker == 0 and not gone:
        path = search.write_study_results(sweep, study)
        print(path.read_text().split("## Trials")[0].rstrip())
        print(f"sweep results: {path}")
    if stopped:
        if worker:  # the first process speaks for all
            sys.exit(130)
        again = shell_command(["litlab-sweep", *argv])
        print(
            f"litlab-sweep: interrupted; {gone}"  # says to run the command again once it is back
            if gone
            else "litlab-sweep: interrupted; the running trial is marked failed and queued "
            f"again. Continue with: {again}",
            file=sys.stderr,
        )
        sys.exit(130)
    if worker == 0 and failed:
        raise LitlabError(f"{len(failed)} worker process(es) failed; see their output above.")


def main(argv: list[str] | None = None) -> None:
    """``litlab-sweep``: ``run`` with a mistake ending in one line, and a Ctrl+C before any
    trial started (while the sweep is planned or torch loads) in one line and status 130."""
    quiet_lightning()
    with interrupted_exit(lambda run_dir: ""), user_errors("litlab-sweep"):
        run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    from litlab.cli.scripts import sweep

    sweep()
