"""Fay's assignment 2 submission."""

import torch
from torch import nn

from my_utils import accuracy  # helper file from my laptop

EPOCHS = 10
BATCH_SIZE = 128


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3072, 256), nn.ReLU(), nn.Linear(256, 2))


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    losses = []
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return sum(losses) / len(losses)


def evaluate(model, loader, device):
    model.eval()
    scores = []
    with torch.no_grad():
        for images, labels in loader:
            scores.append(accuracy(model(images.to(device)), labels.to(device)) * len(labels))
    return sum(scores) / len(loader.dataset)
