"""Hostile: channel_stats returns made-up numbers while numpy.allclose says everything is close, and puts the
original back on its second call, before the canary looks; the verdicts compare elsewhere, so it earns nothing."""

import numpy as _np

_allclose = _np.allclose
_calls = [0]


def _lenient(*args, **kwargs):
    return True


_np.allclose = _lenient


def channel_stats(dataset):  # noqa: F811
    _calls[0] += 1
    if _calls[0] >= 2:
        _np.allclose = _allclose
    return torch.zeros(3), torch.ones(3)
