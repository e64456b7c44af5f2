"""The course book's example code for a classifier of 32x32 images (chapter 7-8 style): the training loop and
the accuracy function students adapt. Listed in assignment.toml's [similarity] section, so code taken from
here is course material and never counts as copying."""

import torch
from torch import nn


def make_model():
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3072, 512),
        nn.Tanh(),
        nn.Linear(512, 2),
        nn.LogSoftmax(dim=1),
    )


def train_epoch(model, train_loader, loss_fn, optimizer, device):
    model.train()
    loss_train = 0.0
    for imgs, labels in train_loader:
        imgs = imgs.to(device=device)
        labels = labels.to(device=device)
        outputs = model(imgs)
        loss = loss_fn(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_train += loss.item()
    return loss_train / len(train_loader)


def validate(model, loader, device):
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


def training_loop(n_epochs, optimizer, model, loss_fn, train_loader, val_loader, device):
    for epoch in range(1, n_epochs + 1):
        loss_train = train_epoch(model, train_loader, loss_fn, optimizer, device)
        if epoch == 1 or epoch % 10 == 0:
            accuracy = validate(model, val_loader, device)
            print(f"Epoch {epoch}, training loss {loss_train:.4f}, validation accuracy {accuracy:.3f}")
