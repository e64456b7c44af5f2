"""Careless: a missing colon; the grader must name the line."""

import torch
from torch import nn

EPOCHS = 3
BATCH_SIZE = 64


def build_model()
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)
