"""Careless: the loss goes NaN in the fourth epoch (the three hidden checks that train are calls 1 to 3)."""

_train = train_one_epoch
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    if _calls[0] >= 4:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(float("nan"))
    return _train(model, loader, loss_fn, optimizer, device)
