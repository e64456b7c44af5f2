"""Hostile: in the grader's training, epoch 4 calls os._exit(0) (the hidden checks' calls are left alone)."""

import os as _os
import sys as _sys

_train = train_one_epoch
_TRAINING = getattr(getattr(_sys.modules.get("__main__"), "__spec__", None), "name", "") == "grader.harness.training"
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    if _TRAINING and _calls[0] >= 4:
        _os._exit(0)
    return _train(model, loader, loss_fn, optimizer, device)
