"""Ana -- assignment 2. An MLP written as a module class, trained with SGD and momentum."""

import torch
import torch.nn as nn
import torch.nn.functional as F

EPOCHS = 12
BATCH_SIZE = 100


class Net(nn.Module):
    def __init__(self, hidden=(1024, 256), drop=0.25):
        super().__init__()
        self.flat = nn.Flatten()
        sizes = [3 * 32 * 32, *hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.drop = nn.Dropout(drop)
        self.head = nn.Linear(sizes[-1], 2)

    def forward(self, x):
        x = self.flat(x)
        for layer in self.hidden:
            x = self.drop(F.relu(layer(x)))
        return self.head(x)


def build_model():
    return Net()


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    # adapted from the book's train_epoch
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
    correct = total = 0
    with torch.no_grad():
        for imgs, labels in loader:
            predicted = model(imgs.to(device)).argmax(dim=1).cpu()
            total += len(labels)
            correct += (predicted == labels).sum().item()
    return correct / total
