"""Sweeps: many runs of one experiment, and the table that ranks them. A single run loads none of
this: litlab-train imports it for ``-m`` alone, litlab-sweep for its search.

Optuna search (``litlab-sweep``, ``litlab.cli.sweep``): ``optuna_search`` (the study loop, its
worker processes and the dead-trial reaper), ``space`` (the ``hparams_search.params`` syntax),
``storage`` (the study's database and the locks its workers share), ``interrupt`` (Ctrl+C
between trials), ``wandb_sweep`` (the same space for W&B Sweeps).
Grids (``litlab-train -m``): ``grid`` (the Hydra callback that records each job and refuses
``hparams_search``), ``multirun`` (one job; DDP inside it), ``slurm`` (``hydra/launcher=slurm``,
the [slurm] extra). Both: ``results`` (results.csv and results.md, best first).
"""
