"""Gus -- assignment 3, CIFAR-2 CNN.

Three conv stages with batch norm, global average pooling instead of a big linear layer
(fewer parameters, trains quicker on my laptop).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms

EPOCHS = 10
BATCH_SIZE = 100


class Net(nn.Module):
    def __init__(self, width=24):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2),                                            # 16x16
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.MaxPool2d(2),                                            # 8x8
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4 * width, 2))

    def forward(self, x):
        return self.classifier(self.features(x))


def build_model():
    return Net()


def make_optimizer(model):
    return torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)


def train_transform():
    return transforms.RandomHorizontalFlip()


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    epoch_loss = 0.0
    for batch, (x, y) in enumerate(loader, start=1):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        epoch_loss += loss.item()
    return epoch_loss / batch


def evaluate(model, loader, device):
    model.eval()
    right = total = 0
    with torch.inference_mode():
        for x, y in loader:
            probs = F.softmax(model(x.to(device)), dim=1)
            right += int((probs.argmax(1) == y.to(device)).sum())
            total += len(y)
    return right / total
