"""Heavy: in the grader's training, epoch 3 multiplies matrices on every thread it was given for an hour: the
CPU budget (plus grace) stops it, long before the wall-clock safety limit."""

import sys as _sys

_train = train_one_epoch
_TRAINING = getattr(getattr(_sys.modules.get("__main__"), "__spec__", None), "name", "") == "grader.harness.training"
_calls = [0]


def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
    _calls[0] += 1
    _a = torch.randn(512, 512)
    while _TRAINING and _calls[0] >= 3:
        _a = torch.tanh(_a @ _a)
    return _train(model, loader, loss_fn, optimizer, device)
