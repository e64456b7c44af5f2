"""Careless: imports a helper module that only exists on the author's laptop."""

import torch
from my_cifar_helpers import build_mlp  # noqa: F401

EPOCHS = 3
BATCH_SIZE = 64


def build_model():
    return build_mlp()


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
