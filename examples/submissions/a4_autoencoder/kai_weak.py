# kai - a4 autoencoder: a narrow bottleneck (512 numbers), three epochs
import torch
from torch import nn

EPOCHS = 3
BATCH_SIZE = 64


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                     nn.Conv2d(16, 8, 3, stride=2, padding=1), nn.ReLU())  # 8 x 8 x 8
        self.decoder = nn.Sequential(nn.ConvTranspose2d(8, 16, 4, stride=2, padding=1), nn.ReLU(),
                                     nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


def build_model():
    return Autoencoder()


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


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
