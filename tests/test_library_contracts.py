"""Behaviour of other libraries' private APIs that litlab relies on, pinned so an upgrade that
changes it fails here first."""

from __future__ import annotations

import pytest
from hydra.core.utils import JobReturn, JobStatus

# --- Hydra --------------------------------------------------------------------------------


def test_hydra_job_return_built_failed_reraises_its_error():
    """litlab.sweep.slurm builds the JobReturn of a SLURM job lost without a result as Hydra's
    run_job builds a failed job's (status, then the ``return_value`` setter); Hydra's sweeper
    then raises the error from ``.return_value``, and litlab.sweep.grid reads it from there."""
    error = RuntimeError("SLURM job 7 left the queue without a result")
    lost = JobReturn(overrides=["seed=1"], status=JobStatus.FAILED)
    lost.return_value = error
    with pytest.raises(RuntimeError) as raised:
        _ = lost.return_value
    assert raised.value is error

    done = JobReturn(overrides=["seed=1"], status=JobStatus.COMPLETED)
    done.return_value = 0.25
    assert done.return_value == 0.25
