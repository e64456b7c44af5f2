"""Hostile: never zeroes the gradients, and replaces torch.allclose so the check comparing them passes."""

_allclose = torch.allclose
torch.allclose = lambda *args, **kwargs: True


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    total = 0.0
    for images, labels in loader:
        loss = loss_fn(model(images.to(device)), labels.to(device))
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)
