"""MNIST as PNG class folders: litlab's image-folder data module (experiment=mnist_folder)
against a plain PyTorch loop over torchvision's ImageFolder, with the same DataLoader settings,
the same CNN, optimiser and schedule. Training images per second over one epoch (median of
interleaved repeats), and the test accuracy litlab's run reaches in that epoch.

The 60k + 10k PNGs are written once from MNIST/raw/ into a cache folder, not the repo:

    python -m benchmarks.image_folder [--repeats 3] [--workers 2] [--quick] [--write-only]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import DATA_DIR, device, interleaved, med, sync, table

CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "litlab"
FOLDER = "MNIST/png"  # under CACHE, as experiment=mnist_folder reads it under paths.data_dir
MEAN, STD = 0.1307, 0.3081


def write_png_folders(raw: Path, out: Path, limit: int | None = None) -> Path:
    """``out/{train,test}/<digit>/<n>.png`` from MNIST's IDX files in ``raw``; done once."""
    from PIL import Image
    from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor as read_idx

    done = out / ".written"
    if done.is_file():
        return out
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(str(raw / f"{prefix}-images-idx3-ubyte"))[:limit].numpy()
        labels = read_idx(str(raw / f"{prefix}-labels-idx1-ubyte"))[:limit].tolist()
        for digit in range(10):
            (out / split / str(digit)).mkdir(parents=True, exist_ok=True)
        for n, (image, label) in enumerate(zip(images, labels, strict=True)):
            Image.fromarray(image).save(out / split / str(label) / f"{n}.png")
    done.write_text(f"from {raw}\n")
    return out


def litlab_epoch(data_dir: Path, workers: int, batch: int, limit: int | None) -> dict:
    """One epoch of ``experiment=mnist_folder``: training images/s and the test accuracy."""
    import lightning as L

    from litlab.config import compose_config
    from litlab.run import fit_and_test

    class TrainClock(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.t0 = time.perf_counter()

        def on_validation_start(self, trainer, module):  # the epoch's training has ended
            if not trainer.sanity_checking:
                sync()
                self.seconds = time.perf_counter() - self.t0

    clock = TrainClock()
    cfg = compose_config(
        [
            "experiment=mnist_folder",
            f"paths.data_dir={data_dir}",
            f"data.num_workers={workers}",
            f"data.batch_size={batch}",
            "logger=none",
            "callbacks.figures=null",
            "callbacks.progress_bar.refresh_rate=0",
            *(
                [f"trainer.limit_train_batches={limit}", "trainer.limit_test_batches=2"]
                if limit
                else []
            ),
        ],
        output_dir=Path(tempfile.mkdtemp()) / "run",
    )
    run = fit_and_test(cfg, callbacks=[clock])
    seen = min(run.trainer.num_training_batches * batch, len(run.datamodule.datasets["train"]))
    return {"rate": seen / clock.seconds, "acc": float(run.trainer.callback_metrics["test/acc"])}


def plain_epoch(root: Path, workers: int, batch: int, limit: int | None) -> dict:
    """The same epoch as a plain loop over ``ImageFolder`` (PIL, per-sample transforms)."""
    from torchvision import datasets
    from torchvision.transforms import v2

    from litlab.config.resolvers import fast_precision
    from litlab.data.workers import one_thread
    from litlab.models.image import conv_net

    tf = v2.Compose(
        [
            v2.Grayscale(),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([MEAN], [STD]),
        ]
    )
    train = datasets.ImageFolder(str(root / "train"), transform=tf)
    loader = torch.utils.data.DataLoader(
        train,
        batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device().type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=2 if workers else None,
        worker_init_fn=one_thread if workers else None,  # as litlab: see one_thread
    )
    dev = device()
    model = conv_net([32, 64], 10, 0.0, stem=16).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    steps = min(len(loader), limit or len(loader))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=steps, pct_start=0.25)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    bf16 = fast_precision("auto") == "bf16-mixed"  # the experiment's precision here
    seen, t0 = 0, time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == steps:
            break
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        seen += len(x)
    sync()
    return {"rate": seen / (time.perf_counter() - t0)}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--write-only", action="store_true")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    limit = 20 if args.quick else None
    cache = Path(tempfile.mkdtemp()) if args.quick else args.cache  # quick: any MNIST/raw
    raw = Path(DATA_DIR) / "MNIST" / "raw"
    root = write_png_folders(raw, cache / FOLDER, 3000 if args.quick else None)
    if args.write_only:
        print(f"MNIST written as PNG class folders in {root}: train with paths.data_dir={cache}")
        return str(root)
    res = interleaved(
        {
            "litlab": lambda: litlab_epoch(cache, args.workers, args.batch_size, limit),
            "plain": lambda: plain_epoch(root, args.workers, args.batch_size, limit),
        },
        1 if args.quick else args.repeats,
    )
    lit, plain = med(res["litlab"], "rate"), med(res["plain"], "rate")
    return table(
        f"Image folder on {device().type.upper()}: MNIST as PNGs, one training epoch, "
        f"batch {args.batch_size}, {args.workers} workers (median training images/s)",
        ["pipeline", "images/s", "ratio", "test accuracy after the epoch"],
        [
            ["litlab ImageFolderDataModule (experiment=mnist_folder)", lit, lit / plain,
             med(res["litlab"], "acc")],
            ["plain loop over torchvision ImageFolder", plain, 1.0, ""],
        ],
    )  # fmt: skip


if __name__ == "__main__":
    main()
