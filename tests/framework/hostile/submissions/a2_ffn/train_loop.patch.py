"""Heavy: train_one_epoch never returns."""


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    while True:
        pass
