"""``litlab-predict ckpt_path=<run dir or .ckpt> [input=...] [output=...]``: a trained model's
predictions, one row per input, in one file, through Lightning's ``trainer.predict``."""

from __future__ import annotations

import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

from litlab import LitlabError
from litlab.cli import interrupted_exit
from litlab.config import CONFIG_DIR, register_resolvers
from litlab.help import group_options
from litlab.inference.cli import help_asked, run_command

register_resolvers()

EXAMPLE = "litlab-predict ckpt_path=logs/mnist/runs/<time> input=my_digits/"
USAGE = """\
litlab-predict: a trained run's predictions, one row per input, in one CSV (or .npy) file.

usage: litlab-predict ckpt_path=<run dir or .ckpt> [input=<path>] [output=<file>] [key=value ...]

  ckpt_path=...    a run dir (its best.ckpt) or a checkpoint file
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
"""


def main() -> Path | None:
    if help_asked(
        USAGE.format(trainers=", ".join(group_options(CONFIG_DIR)["trainer"]), example=EXAMPLE)
    ):
        return None
    with interrupted_exit(lambda run_dir: ""):
        return _main()


@hydra.main(config_path=str(CONFIG_DIR), config_name="predict", version_base="1.3")
def _main(cfg: DictConfig) -> Path | None:
    return run_command(predict, cfg, EXAMPLE)


def predict(cfg: DictConfig) -> Path:
    """Predict ``cfg.input`` (default: the test split) and write the rows to ``cfg.output``."""
    from hydra.utils import instantiate

    from litlab.inference.inputs import input_spec, read_input, test_split
    from litlab.inference.loading import load_run
    from litlab.inference.writer import WRITERS, PredictData, PredictionWriter

    output = Path(cfg.output).expanduser()
    if output.suffix.lower() not in WRITERS:
        raise LitlabError(f"output={output}: litlab writes .csv or .npy files.")
    run = load_run(cfg.ckpt_path, data_dir=cfg.get("data_dir"))
    spec = input_spec(run.datamodule)
    inputs = read_input(cfg.input, spec) if cfg.get("input") else test_split(run.datamodule)
    label = "label" if spec.get("class_names") else "target"
    writer = PredictionWriter(output, inputs.ids, inputs.labels, label)
    trainer = instantiate(
        cfg.trainer, logger=False, callbacks=[writer], enable_checkpointing=False, _convert_="all"
    )
    data = PredictData(inputs.x, run.datamodule, cfg.batch_size)
    with warnings.catch_warnings():
        # Lightning looks for a sampler to report batch indices; the rows carry their own.
        warnings.filterwarnings("ignore", "Couldn't infer the batch indices")
        trainer.predict(run.model, datamodule=data, return_predictions=False)
    if trainer.is_global_zero:
        print(f"litlab: {len(inputs.ids)} predictions written to {output}")
    return output


if __name__ == "__main__":
    main()
