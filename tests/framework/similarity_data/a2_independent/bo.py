# Bo, A2
import torch
from torch import nn

EPOCHS = 20
BATCH_SIZE = 64


def build_model():
    # the book's model, wider, with a second hidden layer
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3072, 1024),
        nn.Tanh(),
        nn.Linear(1024, 128),
        nn.Tanh(),
        nn.Linear(128, 2),
        nn.LogSoftmax(dim=1),
    )


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=1e-2)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    loss_train = 0.0
    for imgs, labels in loader:
        imgs = imgs.to(device=device)
        labels = labels.to(device=device)
        outputs = model(imgs)
        loss = loss_fn(outputs, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_train += loss.item()
    return loss_train / len(loader)


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
