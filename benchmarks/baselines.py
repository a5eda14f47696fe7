"""The baselines, as their authors wrote them: plain PyTorch loops over torchvision datasets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import Clock, device


class ClassicNet(nn.Module):
    """pytorch/examples mnist/main.py: Conv32-Conv64-FC128 with dropout."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
        return self.fc2(self.dropout2(x))


def template_mlp() -> nn.Module:
    """The common template default (lightning-hydra-template's SimpleDenseNet): 784-64-128-64-10."""
    sizes = [784, 64, 128, 64]
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes, sizes[1:], strict=False):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(64, 10))


def mnist_loaders(data_dir: str, batch_size: int, seed: int):
    """torchvision datasets with per-sample transforms and a DataLoader, the usual way."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(data_dir, train=True, download=False, transform=tf)
    test = datasets.MNIST(data_dir, train=False, download=False, transform=tf)
    g = torch.Generator().manual_seed(seed)
    return (
        torch.utils.data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=g),
        torch.utils.data.DataLoader(test, batch_size=1000),
    )


def accuracy(model: nn.Module, loader) -> float:
    model.eval()
    dev = next(model.parameters()).device
    correct = total = 0
    with torch.inference_mode():
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    model.train()
    return correct / total


def train_baseline(
    kind: str,
    data_dir: str,
    seed: int,
    epochs: int,
    every_n_steps: int,
    target: float,
    max_steps: int | None = None,
) -> dict:
    """Train until ``epochs`` end or the test accuracy reaches ``target``; trace the way there."""
    torch.manual_seed(seed)
    if kind == "classic":
        model, batch = ClassicNet(), 64
        opt = torch.optim.Adadelta(model.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    else:
        model, batch = template_mlp(), 64
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = None
    dev = device()
    model.to(dev)  # in place: the optimizer's parameters move with it
    train, test = mnist_loaders(data_dir, batch, seed)
    clock, trace, step = Clock(), [], 0
    clock.start()
    for _ in range(epochs):
        for x, y in train:
            x, y = x.to(dev), y.to(dev)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % every_n_steps == 0 or step == max_steps:
                clock.stop()
                trace.append((clock.total, step, accuracy(model, test)))
                clock.start()
                if trace[-1][2] >= target or step == max_steps:
                    return {"trace": trace, "train_seconds": clock.total}
        if sched:
            sched.step()
    clock.stop()
    trace.append((clock.total, step, accuracy(model, test)))
    return {"trace": trace, "train_seconds": clock.total}
