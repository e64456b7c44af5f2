"""Hostile: evaluate (called only by the hidden checks) ends the test process: sys.exit(0), then os._exit(0)."""

import os as _os
import sys as _sys

_calls = [0]


def evaluate(model, loader, device):  # noqa: F811
    _calls[0] += 1
    if _calls[0] == 1:
        _sys.exit(0)
    _os._exit(0)
