"""Ctrl+C in ``litlab-sweep``: stop at the next safe point, never in the middle of a database
write or a garbage-collection callback. And ``cancel_on_sigterm``, for a grid's SLURM jobs.

Python raises ``KeyboardInterrupt`` wherever the process happens to be: inside SQLAlchemy (a long
traceback, the trial left RUNNING) or inside a gc callback (swallowed, the sweep runs on). Here the
signal only raises a flag; the running trial stops at its next batch (Lightning's own graceful
shutdown), and the study loop stops before the next trial.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # SIGTERM: scancel, a SLURM time limit


class _State:
    requested: int | None = None  # the signal received, once one was
    children: list[subprocess.Popen] = []
    cancelled = False  # SIGTERM stopped a grid's SLURM job (cancel_on_sigterm)


state = _State()


def requested() -> bool:
    """Whether Ctrl+C (or SIGTERM) asked the sweep to stop."""
    return state.requested is not None


def sleep(seconds: float) -> None:
    """``time.sleep`` that ends early once a stop was asked."""
    import time

    for _ in range(max(1, round(seconds / 0.2))):
        if requested():
            return
        time.sleep(0.2)


def _handle(signum, frame) -> None:
    first = state.requested is None
    state.requested = signum
    if first:  # workers of n_jobs get Ctrl+C from the terminal, but not a kill -INT of ours
        for child in state.children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)


@contextmanager
def stop_on_signal(children: list[subprocess.Popen] | None = None) -> Iterator[None]:
    """While inside: Ctrl+C or SIGTERM asks to stop (passed on to ``children``) instead of
    killing the process mid-trial; the previous handlers come back after."""
    saved = {s: signal.getsignal(s) for s in _SIGNALS}
    state.requested, state.children = None, children if children is not None else []
    for s in _SIGNALS:
        signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def cancelled() -> bool:
    """Whether SIGTERM stopped the job (inside ``cancel_on_sigterm`` only)."""
    return state.cancelled


def _cancel(signum, frame) -> None:
    if not state.cancelled:  # once: the run's shutdown must not be interrupted in turn
        state.cancelled = True
        raise KeyboardInterrupt


@contextmanager
def cancel_on_sigterm() -> Iterator[None]:
    """While inside (a job of a grid, on a SLURM node): SIGTERM stops the run at once, as Ctrl+C
    would, and ``cancelled()`` then says so.

    SLURM sends SIGTERM to every process of a job it cancels (``scancel``, the time limit), then
    SIGKILL ``KillWait`` seconds later (30 by default). submitit and Lightning only note the
    signal, so the run went on until it was killed, unrecorded; and the processes it started
    (wandb's service) are gone, so its next call to them fails with an error that is not the
    cause. Stopped here, the run records itself as interrupted before the SIGKILL.
    """
    saved = signal.getsignal(signal.SIGTERM)
    state.cancelled = False
    signal.signal(signal.SIGTERM, _cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)
        state.cancelled = False


def lightning_callback():
    """Raises ``KeyboardInterrupt`` at the next batch once a stop was asked: Lightning then shuts
    the run down as it does for a Ctrl+C (its run.json says ``interrupted``)."""
    from lightning.pytorch.callbacks import Callback

    class StopOnSignal(Callback):
        def _check(self, *args, **kwargs) -> None:
            if requested():
                raise KeyboardInterrupt

        on_train_batch_start = on_validation_batch_start = on_test_batch_start = _check

    return StopOnSignal()
