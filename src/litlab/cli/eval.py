"""``litlab-eval ckpt_path=<checkpoint or run dir>``: test a trained run with its own config,
and record the evaluation in ``eval.json`` (see ``litlab.run.evaluation``)."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from litlab.cli.common import (
    discard_empty_run_dir,
    experiment_as_key,
    help_asked,
    hydra_main,
    interrupted_exit,
    load_torch,
    quote_paths,
    user_errors,
)
from litlab.cli.help import group_options
from litlab.config import CONFIG_DIR, register_resolvers

register_resolvers()

USAGE = """\
litlab-eval: test a trained run again, with the config saved in its checkpoint, and record it.

usage: litlab-eval ckpt_path=<run dir, .ckpt or latest> [key=value ...]

  ckpt_path=...    a run dir (its best.ckpt) or a checkpoint file; latest: the newest run
                   with a checkpoint of experiment=<name> (default mnist), in logs/<name>/runs
  data_dir=...     where the run's data lives now (MNIST: the folder holding MNIST/raw/)
  batch_size=...   evaluation batch size (default: the run's data.eval_batch_size)
  trainer=...      {trainers}
                   (trainer.precision: the run's own by default)
  logger=...       {loggers}; default none.
                   logger=wandb adds eval/* to the training run's own wandb run

Writes logs/eval/runs/<time>/eval.json: metrics, checkpoint, data, versions, status.

examples:
  litlab-eval ckpt_path=logs/mnist/runs/<time>
  litlab-eval experiment=linear ckpt_path=latest     test the newest linear run
  litlab-eval ckpt_path=logs/mnist/runs/<time>/checkpoints/last.ckpt trainer=gpu logger=wandb
"""


def main() -> dict[str, float] | None:
    """``litlab-eval``: answer --help, else compose the eval config and evaluate."""
    groups = group_options(CONFIG_DIR)
    if help_asked(
        USAGE.format(trainers=", ".join(groups["trainer"]), loggers=", ".join(groups["logger"]))
    ):
        return None
    sys.argv[1:] = quote_paths(experiment_as_key(sys.argv[1:]))
    with interrupted_exit(lambda run_dir: ""):
        return _main()


@hydra_main("eval")
def _main(cfg: DictConfig) -> dict[str, float]:
    load_torch()
    from litlab.run.evaluation import evaluate

    # Refused before it started: no run dir is left. Failed while testing: eval.json says so.
    with user_errors(on_error=lambda: discard_empty_run_dir(cfg, own_dir=True)):
        return evaluate(cfg)


if __name__ == "__main__":
    from litlab.cli.scripts import eval

    eval()
