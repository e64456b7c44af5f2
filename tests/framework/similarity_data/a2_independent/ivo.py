"""Assignment 2: a fully connected classifier for CIFAR-2 (airplane = 0, bird = 1).

The grader imports this file, builds your model and optimizer, and trains it itself for EPOCHS
epochs of BATCH_SIZE images using your `train_one_epoch`; then it scores the model on hidden images.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

# How many passes over the training images the grader makes, and how many images go in one batch.
EPOCHS = 9
BATCH_SIZE = 200


def build_model() -> nn.Module:
    """A network of fully connected layers mapping images (N, 3, 32, 32) to logits (N, 2)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(3 * 32 * 32, 300),
        nn.ReLU(),
        nn.Linear(300, 300),
        nn.ReLU(),
        nn.Linear(300, 2),
    )


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer that updates the model's parameters."""
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def train_transform() -> transforms.Compose:
    """Optional augmentation, applied to each normalized training image (3, 32, 32) on the fly."""
    return transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomVerticalFlip(p=0.1)])


def train_one_epoch(
    model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> float:
    """Train for one pass over `loader` and return the mean training loss of its batches."""
    model.train()
    running = 0.0
    for images, labels in loader:
        images = images.to(device)
        labels = labels.to(device)
        optimizer.zero_grad()
        output = model(images)
        loss = loss_fn(output, labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
    return running / len(loader)


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> float:
    """The model's accuracy on `loader`, a float in [0, 1], computed in eval mode without gradients."""
    model.eval()
    good = 0
    with torch.no_grad():
        for images, labels in loader:
            good += (model(images.to(device)).argmax(1) == labels.to(device)).sum().item()
    return good / len(loader.dataset)
