"""Careless: train_one_epoch returns a dict of statistics instead of the mean loss."""

_mean_loss = train_one_epoch


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    return {"loss": _mean_loss(model, loader, loss_fn, optimizer, device), "batches": len(loader)}
