"""The plain PyTorch baseline for start-up: read MNIST, build the CNN, take one step."""

import sys
import time

import torch
import torchvision

from litlab.models.mnist_cnn import conv_net

train = torchvision.datasets.MNIST(sys.argv[1], train=True, download=False)
net = conv_net([32, 64], 10, 0.0, stem=16)
opt = torch.optim.AdamW(net.parameters(), lr=0.01)
x = (train.data[:64].unsqueeze(1).float() / 255 - 0.1307) / 0.3081
with open(sys.argv[2], "w") as f:
    f.write(repr(time.time()))
torch.nn.functional.cross_entropy(net(x), train.targets[:64]).backward()
opt.step()
