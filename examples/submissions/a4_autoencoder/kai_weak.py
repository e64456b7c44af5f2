# kai - a4 autoencoder: a tight bottleneck of 256 numbers, two epochs
import torch
from torch import nn

EPOCHS = 2
BATCH_SIZE = 64


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 4, 4, stride=4), nn.ReLU())  # 4 x 8 x 8 = 256 numbers
        self.decoder = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, stride=4), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def build_model():
    return Autoencoder()


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=3e-3)


def train_one_epoch(model, loader, loss_fn, optimizer, device):
    model.train()
    total = 0
    count = 0
    for imgs, targets in loader:
        imgs, targets = imgs.to(device), targets.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(imgs), targets)
        loss.backward()
        optimizer.step()
        total += loss.item()
        count += 1
    return total / count
