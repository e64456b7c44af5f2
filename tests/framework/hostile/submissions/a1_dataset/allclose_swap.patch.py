"""Hostile, and a known hole (its test is an xfail): channel_stats returns made-up numbers, numpy.allclose is
lenient while the a1 checks compare them (a1's checks still judge inside the sandbox), and the original is put
back after the four comparisons, before the canary looks."""

import numpy as _np

_allclose = _np.allclose
_calls = [0]


def _lenient(*args, **kwargs):
    _calls[0] += 1
    if _calls[0] >= 4:
        _np.allclose = _allclose
    return True


_np.allclose = _lenient


def channel_stats(dataset):  # noqa: F811
    return torch.zeros(3), torch.ones(3)
