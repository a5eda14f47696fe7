"""The plain PyTorch baseline of a whole MNIST run: what litlab-train's default run does, by hand.

Import torch and torchvision, parse MNIST with torchvision, hold it on the device as uint8, train
litlab's recipe for one epoch (the same net, AdamW + one-cycle, label smoothing, batch 128, the
same mixed precision), score the 5k validation split and the official 10k test set, print the
test accuracy. No Lightning, no Hydra, no litlab import: the start-up cost is torch's alone.

    python -m benchmarks.plain_mnist DATA_DIR [--limit BATCHES] [--first-step FILE]

``--first-step`` stops at the first training step (for the start-up benchmark).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

MEAN, STD = 0.1307, 0.3081


def net() -> nn.Sequential:
    """litlab's default MNIST CNN (``model=mnist_cnn``), written out by hand."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]

    stem = [nn.Conv2d(1, 16, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    head = [nn.Flatten(), nn.Linear(64 * 3 * 3, 10)]
    return nn.Sequential(*stem, *block(16, 32), *block(32, 64), *head)


def precision(dev: torch.device) -> torch.dtype | None:
    """What litlab's ``auto`` picks: bf16 on GPUs that have it (else fp16), fp32 on this CPU."""
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def accuracy(model, x, y, dtype, limit: int | None) -> float:
    model.eval()
    correct = total = 0
    with torch.inference_mode(), torch.autocast(x.device.type, dtype, enabled=dtype is not None):
        for i, lo in enumerate(range(0, len(x), 1000)):
            if limit is not None and i == limit:
                break
            xb = (x[lo : lo + 1000].unsqueeze(1).float() / 255 - MEAN) / STD
            correct += int((model(xb).argmax(1) == y[lo : lo + 1000]).sum())
            total += len(xb)
    model.train()
    return correct / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data_dir")
    p.add_argument("--limit", type=int, default=None, help="train batches (quick runs)")
    p.add_argument("--val-size", type=int, default=5000, help="as litlab's data.val_size")
    p.add_argument("--first-step", default=None, help="write the time of the first step, exit")
    args = p.parse_args()
    import torchvision

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    train = torchvision.datasets.MNIST(args.data_dir, train=True, download=False)
    test = torchvision.datasets.MNIST(args.data_dir, train=False, download=False)
    order = torch.randperm(len(train.data), generator=torch.Generator().manual_seed(0))
    x, y = train.data.to(dev), train.targets.to(dev)
    val, fit = order[: args.val_size].to(dev), order[args.val_size :].to(dev)
    model = net().to(dev, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.0)
    steps = min(-(-len(fit) // 128), args.limit or len(fit))
    # As litlab: torch divides by zero when the warm-up would end at step 0 (4 steps).
    total = steps + 1 if steps == 4 else steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.01, total_steps=total, pct_start=0.25)
    dtype = precision(dev)
    perm = fit[torch.randperm(len(fit), device=dev)]
    for step in range(steps):
        if args.first_step:  # the start-up benchmark ends here, like benchmarks.probes.FirstStep
            with open(args.first_step, "w") as f:
                f.write(repr(time.time()))
            return
        idx = perm[step * 128 : (step + 1) * 128]
        xb = (x[idx].unsqueeze(1).float() / 255 - MEAN) / STD
        with torch.autocast(dev.type, dtype, enabled=dtype is not None):
            loss = F.cross_entropy(
                model(xb.contiguous(memory_format=torch.channels_last)), y[idx], label_smoothing=0.1
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    limit = 2 if args.limit is not None else None
    val_acc = accuracy(model, x[val], y[val], dtype, limit)
    test_acc = accuracy(model, test.data.to(dev), test.targets.to(dev), dtype, limit)
    print(f"val/acc {val_acc:.4f} test/acc {test_acc:.4f}")


if __name__ == "__main__":
    main()
