"""Lightning's CSV logger, made to keep what earlier attempts of a run wrote."""

from __future__ import annotations

import csv

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from typing_extensions import override


class _AppendingWriter(ExperimentWriter):
    """Appends to ``metrics.csv`` and keeps its columns.

    Lightning's writer deletes an existing ``metrics.csv`` (a resumed run would lose its earlier
    epochs) and knows only the columns it wrote itself: a copy of it in another process (the
    test phase under ``ddp_spawn``) rewrote the file with too few columns and failed with
    "dict contains fields not in fieldnames".
    """

    @override
    def _check_log_dir_exists(self) -> None:
        pass  # an existing metrics.csv is this run's, from before a resume: keep it

    @override
    def _record_new_keys(self) -> set[str]:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = sorted(set(self.metrics_keys) | set(header))
        return super()._record_new_keys()


class CSVLogger(_LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` whose ``metrics.csv`` survives resumes."""

    @override
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
