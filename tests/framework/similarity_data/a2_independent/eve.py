"""Eve's FFN. Residual MLP: two hidden blocks with skip connections, Adam with a step-decay scheduler."""
import torch
from torch import nn

EPOCHS = 10
BATCH_SIZE = 128
HIDDEN = 512


class Residual(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.SiLU(), nn.Dropout(0.3))

    def forward(self, x):
        return x + self.body(x)


def build_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 1024, HIDDEN), nn.SiLU(),
                         Residual(HIDDEN), Residual(HIDDEN), nn.Linear(HIDDEN, 2))


def make_optimizer(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.99))
    optimizer.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=300, gamma=0.5)
    return optimizer


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    losses = torch.zeros(len(loader))
    for i, batch in enumerate(loader):
        images, target = (t.to(device) for t in batch)
        optimizer.zero_grad()
        loss = loss_fn(model(images), target)
        loss.backward()
        optimizer.step()
        if hasattr(optimizer, "scheduler"):
            optimizer.scheduler.step()
        losses[i] = loss.detach()
    return losses.mean().item()


def evaluate(model, loader, device):
    was_training = model.training
    model.eval()
    predictions, truths = [], []
    with torch.no_grad():
        for images, target in loader:
            predictions.append(model(images.to(device)).argmax(1).cpu())
            truths.append(target)
    model.train(was_training)
    return (torch.cat(predictions) == torch.cat(truths)).float().mean().item()
