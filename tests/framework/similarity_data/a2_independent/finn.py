"""Finn Walsh
Assignment 2 - fully connected network

Based on the book's training loop (chapter 8), with my own model.
"""

import statistics

import torch
from torch import nn
from torchvision import transforms as T

EPOCHS = 16
BATCH_SIZE = 96


def build_model():
    model = nn.Sequential()
    model.add_module("flatten", nn.Flatten())
    model.add_module("fc1", nn.Linear(3072, 700))
    model.add_module("bn1", nn.BatchNorm1d(700))
    model.add_module("act1", nn.LeakyReLU(0.1))
    model.add_module("fc2", nn.Linear(700, 70))
    model.add_module("bn2", nn.BatchNorm1d(70))
    model.add_module("act2", nn.LeakyReLU(0.1))
    model.add_module("out", nn.Linear(70, 2))
    return model


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)


def train_transform():
    return T.Compose([T.RandomHorizontalFlip(), T.RandomErasing(p=0.2)])


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    loss_list = []
    for imgs, labels in loader:
        imgs = imgs.to(device=device)
        labels = labels.to(device=device)
        outputs = model(imgs)
        loss = loss_fn(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_list.append(loss.item())
    return statistics.mean(loss_list)


def evaluate(model, loader, device):
    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        for imgs, labels in loader:
            imgs = imgs.to(device=device)
            labels = labels.to(device=device)
            outputs = model(imgs)
            _, predicted = torch.max(outputs, dim=1)
            total += labels.shape[0]
            correct += int((predicted == labels).sum())
    return correct / total
