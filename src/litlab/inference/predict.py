"""A trained model's predictions, one row per input, in one file, through Lightning's
``trainer.predict`` (the command is ``litlab.cli.predict``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from omegaconf import DictConfig

from litlab import LitlabError


def predict(cfg: DictConfig) -> Path:
    """Predict ``cfg.input`` (default: the test split) and write the rows to ``cfg.output``."""
    from litlab.inference.inputs import input_spec, read_input, test_split
    from litlab.inference.loading import load_run
    from litlab.inference.writer import WRITERS, PredictData, PredictionWriter
    from litlab.run.build import build  # trusted, as a run builds it (Hydra 1.4 asks)

    output = Path(cfg.output).expanduser()
    if output.suffix.lower() not in WRITERS:
        raise LitlabError(f"output={output}: litlab writes .csv or .npy files.")
    run = load_run(cfg.ckpt_path, data_dir=cfg.get("data_dir"))
    spec = input_spec(run.datamodule)
    inputs = (
        read_input(cfg.input, run.datamodule) if cfg.get("input") else test_split(run.datamodule)
    )
    label = "label" if spec.get("class_names") else "target"
    writer = PredictionWriter(output, inputs.ids, inputs.labels, label)
    trainer = build(
        cfg.trainer, "trainer", logger=False, callbacks=[writer], enable_checkpointing=False
    )
    data = PredictData(inputs.x, run.datamodule, cfg.batch_size)
    with warnings.catch_warnings():
        # Lightning looks for a sampler to report batch indices; the rows carry their own.
        warnings.filterwarnings("ignore", "Couldn't infer the batch indices")
        trainer.predict(run.model, datamodule=data, return_predictions=False)
    if trainer.is_global_zero:
        print(f"litlab: {len(inputs.ids)} predictions written to {output}")
    return output
