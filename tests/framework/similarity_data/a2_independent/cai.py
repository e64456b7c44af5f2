"""Assignment 2 (Cai). Blocks of Linear -> LayerNorm -> GELU -> Dropout, AdamW, per-sample mean loss."""

import torch
from torch import nn
from torchvision import transforms

EPOCHS = 14
BATCH_SIZE = 256
WIDTHS = [3072, 640, 320, 160]


def block(n_in: int, n_out: int, p: float) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.LayerNorm(n_out), nn.GELU(), nn.Dropout(p)]


def build_model() -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in zip(WIDTHS, WIDTHS[1:]):
        layers += block(n_in, n_out, 0.2)
    layers.append(nn.Linear(WIDTHS[-1], 2))
    return nn.Sequential(*layers)


def make_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    other = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": other, "weight_decay": 0.0}],
                             lr=3e-4)


def train_transform():
    return transforms.RandomHorizontalFlip()


def train_one_epoch(model, loader, loss_fn, optimizer, device) -> float:
    model.train()
    batch_losses = []
    for step, (x, y) in enumerate(loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        batch_losses.append(float(loss))
    return sum(batch_losses) / max(len(batch_losses), 1)


@torch.inference_mode()
def evaluate(model, loader, device) -> float:
    model.eval()
    right = seen = 0
    for x, y in loader:
        right += int((model(x.to(device)).argmax(-1) == y.to(device)).sum())
        seen += y.numel()
    return right / seen
