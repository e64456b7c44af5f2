"""Hostile: the fourth call of train_one_epoch (the grader's epoch 4; checks make calls 1 to 3) calls os._exit(0)."""

import os as _os

_train = train_one_epoch
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    if _calls[0] >= 4:
        _os._exit(0)
    return _train(model, loader, loss_fn, optimizer, device)
