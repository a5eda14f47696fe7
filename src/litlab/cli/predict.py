"""``litlab-predict ckpt_path=<run dir or .ckpt> [input=...] [output=...]``: the command; the work
is ``litlab.inference.predict``."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig

from litlab.cli.common import (
    experiment_as_key,
    help_asked,
    hydra_main,
    interrupted_exit,
    quote_paths,
    run_command,
)
from litlab.cli.help import group_options
from litlab.config import CONFIG_DIR, register_resolvers

register_resolvers()

EXAMPLE = "litlab-predict ckpt_path=logs/mnist/runs/<time> input=my_digits/"
USAGE = """\
litlab-predict: a trained run's predictions, one row per input, in one CSV (or .npy) file.

usage: litlab-predict ckpt_path=<run dir, .ckpt or latest> [input=<path>] [output=<file>]
                      [key=value ...]

  ckpt_path=...    a run dir (its best.ckpt) or a checkpoint file; latest: the newest run
                   with a checkpoint of experiment=<name> (default mnist), in logs/<name>/runs
  input=...        default: the run's test split (with the true labels). Or your own data:
                   PNG/JPEG digits (a folder or one), an IDX file or a .npy array (MNIST);
                   a .csv or .npy of x values (linear, sine) or of points (logistic)
  output=...       a .csv (default: <log dir>/predict/runs/<time>/predictions.csv) or .npy
  data_dir=...     where the run's data lives now (MNIST: the folder holding MNIST/raw/)
  batch_size=1000  inputs per batch
  trainer=...      {trainers}; e.g. trainer=gpu, trainer=ddp_cpu
                   (trainer.precision=32-true by default: exactly what litlab.load(...)(x) gives)

examples:
  {example}
  litlab-predict ckpt_path=logs/linear/runs/<time> input=x.csv output=y.csv
  litlab-predict experiment=linear ckpt_path=latest input=x.csv
"""


def main() -> Path | None:
    """``litlab-predict``: answer --help, else compose the predict config and predict."""
    if help_asked(
        USAGE.format(trainers=", ".join(group_options(CONFIG_DIR)["trainer"]), example=EXAMPLE)
    ):
        return None
    sys.argv[1:] = quote_paths(experiment_as_key(sys.argv[1:]))
    with interrupted_exit(lambda run_dir: ""):
        return _main()


@hydra_main("predict")
def _main(cfg: DictConfig) -> Path | None:
    from litlab.inference.predict import predict

    return run_command(predict, cfg, EXAMPLE, output=cfg.output)


if __name__ == "__main__":
    from litlab.cli.scripts import predict

    predict()
