"""Heavy: the fourth call of train_one_epoch sleeps for an hour (the hidden checks make calls 1 to 3)."""

import time as _time

_train = train_one_epoch
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    if _calls[0] >= 4:
        _time.sleep(3600)
    return _train(model, loader, loss_fn, optimizer, device)
