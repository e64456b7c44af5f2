import math

import torch
from torch import nn

CONFIG = {"hidden": 400, "depth": 3, "lr": 0.001, "clip": 1.0}
EPOCHS = 8
BATCH_SIZE = 32


def build_model():
    """Dev: a deep narrow MLP with SELU (self-normalizing, so no batch norm)."""
    net = [nn.Flatten(), nn.Linear(32 * 32 * 3, CONFIG["hidden"]), nn.SELU()]
    for _ in range(CONFIG["depth"] - 1):
        net.extend([nn.Linear(CONFIG["hidden"], CONFIG["hidden"]), nn.SELU()])
    net.append(nn.Linear(CONFIG["hidden"], 2))
    model = nn.Sequential(*net)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1 / math.sqrt(m.in_features))
            nn.init.zeros_(m.bias)
    return model


def make_optimizer(model):
    return torch.optim.RMSprop(model.parameters(), lr=CONFIG["lr"], alpha=0.95)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    sum_loss, count = 0.0, 0
    it = iter(loader)
    while True:
        try:
            inputs, targets = next(it)
        except StopIteration:
            break
        inputs = inputs.to(device)
        targets = targets.to(device)
        model.zero_grad()
        cost = loss_fn(model(inputs), targets)
        cost.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CONFIG["clip"])
        optimizer.step()
        sum_loss = sum_loss + cost.item()
        count = count + 1
    return sum_loss / count


def evaluate(model, loader, device):
    model.eval()
    n_correct = 0
    with torch.no_grad():
        for inputs, targets in loader:
            guesses = torch.argmax(model(inputs.to(device)), dim=1)
            n_correct += torch.eq(guesses, targets.to(device)).sum().item()
    return n_correct / len(loader.dataset)
