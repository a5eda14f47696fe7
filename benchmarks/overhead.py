"""What the Trainer costs: training epochs by litlab's Trainer setup vs a hand-written loop.

Same model, data, batches, optimizer, schedule and precision; the loop is what a careful person
writes by hand. Validation and testing are off for all: this is the training loop alone. Each
contender trains two epochs; the second is the steady per-step cost, and what the first costs
beyond it (lazy imports, first logs, allocator warm-up) is reported apart. A bare Lightning
Trainer (no logger, progress bar or callbacks) on the same module shows what Lightning's own
loop costs before litlab adds anything.

On a GPU every contender trains there, in the Trainer's precision, with the data resident on the
device as litlab keeps it, and every clock waits for the GPU before it is read.

    python -m benchmarks.overhead [--repeats 3] [--tasks mnist,mnist-512,linear,logistic] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import time

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from benchmarks.common import DATA_DIR, device, interleaved, med, sync, table
from litlab.config import compose_config, to_plain
from litlab.models.optim import build_optimizer, scheduler_length
from litlab.run.build import build_all

TASKS = {
    "mnist": ["experiment=mnist", f"paths.data_dir={DATA_DIR}"],
    "mnist-512": ["experiment=mnist", f"paths.data_dir={DATA_DIR}", "data.batch_size=512"],
    "linear": ["experiment=linear", "data.num_samples=20000", "trainer.max_epochs=1"],
    "logistic": [
        "experiment=logistic",
        "data.num_samples=10000",
        "data.batch_size=100",
        "trainer.max_epochs=1",
    ],
}


EPOCHS = 2


class EpochTimer(Callback):
    def __init__(self):
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        sync()
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        sync()
        self.seconds.append(time.perf_counter() - self.t0)


def setup(task: str, quick: bool):
    overrides = [
        *TASKS[task],
        "trainer.limit_val_batches=0",
        "test=false",
        "trainer.num_sanity_val_steps=0",
        "callbacks.early_stopping=null",
        "callbacks.model_checkpoint=null",
        f"trainer.max_epochs={EPOCHS}",
    ]
    if quick:
        overrides += (
            ["trainer.limit_train_batches=10", "data.val_size=200"]
            if task.startswith("mnist")
            else ["trainer.limit_train_batches=10"]
        )
    cfg = compose_config(overrides)
    datamodule, model, trainer = build_all(cfg, to_plain(cfg))
    datamodule.prepare_data()
    datamodule.setup()
    return cfg, datamodule, model, trainer


def litlab_epoch(task: str, quick: bool, bare: bool = False) -> dict:
    cfg, datamodule, model, trainer = setup(task, quick)
    timer = EpochTimer()
    if bare:
        trainer = L.Trainer(
            accelerator=device().type,
            devices=1,
            precision=cfg.trainer.precision,
            max_epochs=EPOCHS,
            limit_train_batches=trainer.limit_train_batches,
            limit_val_batches=0,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=[timer],
        )
    else:
        trainer.callbacks.append(timer)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    trainer.fit(model, datamodule)
    fit = time.perf_counter() - t0
    first, last = timer.seconds[0], timer.seconds[-1]
    return {
        "epoch": last,
        "first": first - last,
        "fit": fit - sum(timer.seconds),
        "steps": trainer.global_step // EPOCHS,
    }


def loop_epoch(task: str, quick: bool) -> dict:
    """The loop a user would write: same pieces, no framework."""
    cfg, datamodule, model, trainer = setup(task, quick)
    dev = device()
    net, loss_fn = copy.deepcopy(model.net).to(dev), model.loss_fn
    squeeze = task == "logistic"  # BinaryClassifier.forward squeezes its one output
    memory_format = getattr(model, "memory_format", torch.contiguous_format)
    net.to(memory_format=memory_format)
    # Resident on the device, as TensorDataModule.setup puts it under a GPU trainer.
    datamodule.splits = {k: (x.to(dev), y.to(dev)) for k, (x, y) in datamodule.splits.items()}
    opt = build_optimizer(instantiate(cfg.model.optimizer), net.parameters())  # fused on a GPU
    loader = datamodule.train_dataloader()
    steps = min(len(loader), 10) if quick else len(loader)
    sched = None
    if cfg.model.get("scheduler"):
        factory = instantiate(cfg.model.scheduler)
        interval = cfg.model.get("scheduler_interval", "step")
        sched = factory(opt, **scheduler_length(factory, EPOCHS * steps, interval, EPOCHS))
    precision = str(cfg.trainer.precision)
    half = torch.bfloat16 if precision.startswith("bf16") else torch.float16
    autocast = precision in ("bf16-mixed", "16-mixed")
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "16-mixed")
    torch.manual_seed(0)
    seconds = []
    for epoch in range(EPOCHS):
        loader.sampler.set_epoch(epoch)
        sync()
        t0 = time.perf_counter()
        for i, batch in enumerate(loader):
            if i == steps:
                break
            x, y = datamodule.on_after_batch_transfer(batch, 0)
            with torch.autocast(dev.type, dtype=half, enabled=autocast):
                out = net(x.contiguous(memory_format=memory_format) if x.dim() == 4 else x)
                loss = loss_fn(out.squeeze(-1) if squeeze else out, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if sched:
                sched.step()
        sync()
        seconds.append(time.perf_counter() - t0)
    return {"epoch": seconds[-1], "first": seconds[0] - seconds[-1], "steps": steps}


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tasks", default="mnist,linear,logistic")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    rows = []
    for task in args.tasks.split(","):
        res = interleaved(
            {
                "loop": lambda t=task: loop_epoch(t, args.quick),
                "bare": lambda t=task: litlab_epoch(t, args.quick, bare=True),
                "litlab": lambda t=task: litlab_epoch(t, args.quick),
            },
            args.repeats,
        )
        loop = med(res["loop"], "epoch")
        steps = res["litlab"][0]["steps"]
        for name, label in (("bare", "bare Lightning Trainer"), ("litlab", "litlab (default)")):
            sec = med(res[name], "epoch")
            rows.append(
                [
                    task,
                    label,
                    steps,
                    loop,
                    sec,
                    sec / loop,
                    1e6 * (sec - loop) / steps,
                    med(res[name], "first") - med(res["loop"], "first"),
                    med(res[name], "fit"),
                ]
            )
    return table(
        f"Trainer overhead: steady training epoch on {device().type.upper()} "
        "(median of interleaved repeats)",
        [
            "task",
            "trainer",
            "steps",
            "hand loop s",
            "trainer s",
            "ratio",
            "extra us/step",
            "1st epoch extra s",
            "fit setup s",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
