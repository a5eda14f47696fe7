"""Sweeps: many runs of one experiment, and the table that ranks them.

Optuna search (``litlab-sweep``, ``litlab.cli.sweep``): ``optuna_search`` (the study loop),
``space`` (the ``hparams_search.params`` syntax), ``storage`` (the study's database),
``interrupt`` (Ctrl+C between trials), ``wandb_sweep`` (the same space for W&B Sweeps).
Grids (``litlab-train -m``): ``grid`` (the Hydra callback that records each job), ``slurm``
(``hydra/launcher=slurm``), ``guard`` (``litlab-train -m hparams_search=...`` is refused).
Both: ``results`` (results.csv and results.md, best first).
"""
