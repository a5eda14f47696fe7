"""``litlab-export ckpt_path=<run dir or .ckpt> format=onnx|torchscript|exported_program``: the
trained model, with its datamodule's preprocessing built in, as one file and a JSON beside it.

The exported model takes samples as the datamodule stores them (MNIST: uint8 28x28 images, 0-255,
white digit on black; the synthetic tasks: float32 rows) with a dynamic batch axis, and returns
the task's raw output (logits for classifiers); the JSON says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from omegaconf import DictConfig

from litlab import LitlabError, __version__
from litlab.config.extras import require
from litlab.files import write_atomic, write_text

SUFFIXES = {"onnx": ".onnx", "torchscript": ".ts", "exported_program": ".pt2"}


def export(cfg: DictConfig) -> Path:
    """Write ``cfg.format`` of the checkpoint's model and its JSON; returns the model file."""
    from hydra.core.hydra_config import HydraConfig

    fmt = cfg.format
    if fmt not in SUFFIXES:
        raise LitlabError(f"format={fmt}: litlab exports {', '.join(SUFFIXES)}.")
    if cfg.get("output"):
        output = Path(cfg.output).expanduser()
    else:
        output = Path(HydraConfig.get().runtime.output_dir) / f"model{SUFFIXES[fmt]}"
    path = export_model(cfg.ckpt_path, fmt, output)
    print(f"litlab: exported to {path} (what it expects: {description(path)})")
    return path


def description(model: Path) -> Path:
    """The JSON beside an exported model: ``model.onnx.json``, named after the whole file name
    so that ``output=x.json`` keeps its model and ``m.onnx`` and ``m.pt2`` keep their own."""
    return model.with_name(model.name + ".json")


def export_model(ckpt_path: str | Path, fmt: str, output: Path) -> Path:
    """The checkpoint's model, its preprocessing built in, as ``fmt`` at ``output``, plus
    the JSON describing it; returns the model file. Both are written atomically: a failed
    export leaves the files it would replace as they were, and ends in one line."""
    require(f"format={fmt}")  # its package, before the checkpoint is loaded
    import torch

    from litlab.inference.inputs import input_spec
    from litlab.inference.loading import load_run

    run = load_run(ckpt_path)
    spec = input_spec(run.datamodule)
    model = with_preprocessing(run.model, run.datamodule).eval()
    example = example_input(spec)
    with torch.no_grad():
        write_atomic(output, lambda f: EXPORTERS[fmt](model, example, f))
        out = model(example)
    info = describe(fmt, output, run, spec, out)
    write_text(description(output), json.dumps(info, indent=2) + "\n")
    return output


def with_preprocessing(model, datamodule):
    """A LightningModule that runs the datamodule's on-device preprocessing, then ``model``."""
    import lightning as L

    class Exportable(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            inputs, _ = datamodule.on_after_batch_transfer((x, x), 0)
            return self.model(inputs)

    return Exportable()


def example_input(spec: dict, batch: int = 2):
    """A batch of two: torch.export treats sizes 0 and 1 as special, so they would not stay
    dynamic."""
    import torch

    shape = (batch, *spec["shape"])
    if spec["dtype"] == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8)
    return torch.randn(shape, dtype=getattr(torch, spec["dtype"]))


def _batch_dim():
    from torch.export import Dim

    return {"x": {0: Dim("batch")}}


def to_onnx(model, example, f: BinaryIO) -> None:
    """``model`` as ONNX (Lightning's ``to_onnx``), with a dynamic batch axis."""
    import contextlib
    import io

    # The exporter reports each of its stages on stdout; litlab prints one line instead.
    with contextlib.redirect_stdout(io.StringIO()):
        program = model.to_onnx(
            None,  # the program, written below: torch's exporter writes only to a path
            example,
            input_names=["x"],
            output_names=["output"],
            dynamic_shapes=_batch_dim(),
        )
    f.write(program.model_proto.SerializeToString())  # small models: weights in the one file


def to_torchscript(model, example, f: BinaryIO) -> None:
    """``model`` traced to TorchScript."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # Lightning 2.6 warns that TorchScript is deprecated in PyTorch; --help says so too.
        warnings.filterwarnings("ignore", ".*to_torchscript.*deprecated")
        # Traced, not scripted: the preprocessing is plain tensor code.
        script = model.to_torchscript(method="trace", example_inputs=example)
    torch.jit.save(script, f)


def to_exported_program(model, example, f: BinaryIO) -> None:
    """``model`` as a ``torch.export`` program, with a dynamic batch axis."""
    import torch

    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=_batch_dim()), f)


EXPORTERS = {
    "onnx": to_onnx,
    "torchscript": to_torchscript,
    "exported_program": to_exported_program,
}


def describe(fmt: str, output: Path, run, spec: dict, out) -> dict:
    """The JSON beside the model: enough to feed it and read its answer without litlab."""
    return {
        "format": fmt,
        "file": output.name,
        "input": {
            "name": "x",
            "shape": ["batch", *spec["shape"]],
            "dtype": spec["dtype"],
            **({"names": spec["names"]} if spec.get("names") else {}),
            **({"image": spec["image"]} if spec.get("image") else {}),
        },
        "preprocessing": {
            "included": True,
            **({"resize_first": spec["resize"]} if spec.get("resize") else {}),
            "normalisation": spec.get("normalisation"),
            "note": "The model applies the normalisation itself: give it raw samples"
            + (f" resized to {spec['resize']} [height, width]." if spec.get("resize") else "."),
        },
        "output": {
            "name": "output",
            "shape": ["batch", *out.shape[1:]],
            "dtype": str(out.dtype).removeprefix("torch."),
            "meaning": run.model.output_meaning,
        },
        "class_names": spec.get("class_names"),
        "experiment": run.config.get("name"),
        "checkpoint": str(run.path),
        "litlab_version": __version__,
    }
