# jo - a5 cifar10: one small convolution and plain SGD, trained for two epochs
import torch
from torch import nn

EPOCHS = 2
BATCH_SIZE = 32


def build_model():
    model = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=5, stride=2, padding=2),  # 16x16
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    )
    return model


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.01)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    total = 0
    count = 0
    for imgs, labels in loader:
        imgs, labels = imgs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(imgs), labels)
        loss.backward()
        optimizer.step()
        total += loss.item()
        count += 1
    return total / count


def evaluate(model, loader, device):
    correct = 0
    n = 0
    with torch.no_grad():
        for imgs, labels in loader:
            out = model(imgs.to(device))
            correct += (out.argmax(dim=1) == labels.to(device)).sum().item()
            n += len(labels)
    return correct / n
