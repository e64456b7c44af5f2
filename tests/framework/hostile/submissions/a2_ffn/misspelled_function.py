"""Careless: `train_one_epoch` is spelled `trian_one_epoch`; the sentence should suggest the close name."""

import torch
from torch import nn

EPOCHS = 3
BATCH_SIZE = 64


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1)


def trian_one_epoch(model, loader, loss_fn, optimizer, device):
    total = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(images.to(device)), labels.to(device))
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)


def evaluate(model, loader, device):
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for images, labels in loader:
            correct += (model(images.to(device)).argmax(dim=1) == labels.to(device)).sum().item()
            seen += len(labels)
    return correct / seen
