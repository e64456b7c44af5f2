"""Ivy's CNN for assignment 3."""

import torch
from torch import nn
from torchvision import transforms

EPOCHS = 8
BATCH_SIZE = 64


def build_model():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 8 * 8, 256),  # 32 / 2 / 2 = 8
        nn.ReLU(),
        nn.Linear(256, 2),
    )


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def train_transform():
    return transforms.RandomHorizontalFlip()


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
    correct = total = 0
    with torch.no_grad():
        for images, labels in loader:
            predictions = model(images.to(device)).argmax(dim=1)
            correct += (predictions == labels.to(device)).sum().item()
            total += labels.numel()
    return correct / total
