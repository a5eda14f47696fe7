"""``litlab-export ckpt_path=<run dir or .ckpt> format=onnx|torchscript|exported_program``: the
trained model, with its datamodule's preprocessing built in, as one file and a JSON beside it.

The exported model takes samples as the datamodule stores them (MNIST: uint8 28x28 images, 0-255,
white digit on black; the synthetic tasks: float32 rows) with a dynamic batch axis, and returns
the task's raw output (logits for classifiers); the JSON says so.
"""

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
from litlab.config import register_resolvers

register_resolvers()

EXAMPLE = "litlab-export ckpt_path=logs/mnist/runs/<time> format=onnx"
USAGE = f"""\
litlab-export: a trained run's model, preprocessing included, as ONNX, TorchScript or a
torch.export program, with a JSON beside it of what it takes and returns.

usage: litlab-export ckpt_path=<run dir, .ckpt or latest> [format=onnx] [output=<file>]

  ckpt_path=...   a run dir (its best.ckpt) or a checkpoint file; latest: the newest run
                  with a checkpoint of experiment=<name> (default mnist), in logs/<name>/runs
  format=...      onnx (default; needs pip install 'litlab[onnx]'; run it with onnxruntime),
                  torchscript (torch.jit.load; deprecated by PyTorch), exported_program
                  (torch.export.load); these two need nothing more
  output=...      default: <log dir>/export/runs/<time>/model.{{onnx,ts,pt2}}; the JSON is
                  <output>.json (model.onnx.json)

examples:
  {EXAMPLE}
  litlab-export experiment=mnist ckpt_path=latest format=onnx
"""


def main() -> Path | None:
    """``litlab-export``: answer --help, else compose the export config and export."""
    if help_asked(USAGE):
        return None
    sys.argv[1:] = quote_paths(experiment_as_key(sys.argv[1:]))
    with interrupted_exit(lambda run_dir: ""):
        return _main()


@hydra_main("export")
def _main(cfg: DictConfig) -> Path | None:
    from litlab.inference.export import export

    return run_command(export, cfg, EXAMPLE, output=cfg.get("output"))


if __name__ == "__main__":
    from litlab.cli.scripts import export

    export()
