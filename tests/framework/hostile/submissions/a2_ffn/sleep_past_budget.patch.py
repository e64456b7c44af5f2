"""Heavy: in the grader's training, epoch 4 sleeps for an hour; sleeping uses no CPU budget, so the wall-clock
safety limit is what stops it (the hidden checks' calls, in another process, are left alone)."""

import sys as _sys
import time as _time

_train = train_one_epoch
_TRAINING = getattr(getattr(_sys.modules.get("__main__"), "__spec__", None), "name", "") == "grader.harness.training"
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    if _TRAINING and _calls[0] >= 4:
        _time.sleep(3600)
    return _train(model, loader, loss_fn, optimizer, device)
