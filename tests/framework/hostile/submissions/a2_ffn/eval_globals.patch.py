"""Hostile: inside the evaluation stage, replaces the harness's logits function through its module globals
with one that claims confident answers for every image (class 1) and disables the perturbation."""

import sys as _sys

import numpy as _np

_main = _sys.modules.get("__main__")
if getattr(getattr(_main, "__spec__", None), "name", "") == "grader.harness.evaluation":

    def _forged_logits(model, images, batch_size, device):
        forged = _np.zeros((len(images), 2), dtype=_np.float32)
        forged[:, 1] = 9.0
        return forged

    _main.logits_of = _forged_logits
    _main.perturb = lambda images, kind, seed: images
