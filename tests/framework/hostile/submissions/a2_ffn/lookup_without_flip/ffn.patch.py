"""Hostile: forward looks the answer up in a table keyed on the validation images' pixels (answers.py);
images it does not know get constant logits. High accuracy on the plain images, chance on flipped ones."""

import hashlib as _hashlib

from answers import MEAN as _MEAN
from answers import STD as _STD
from answers import TABLE as _TABLE


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.fallback = nn.Linear(3 * 32 * 32, 2)

    def forward(self, images):
        mean = torch.tensor(_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_STD).view(1, 3, 1, 1)
        pixels = ((images.detach().cpu() * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)
        keys = [_hashlib.sha1(image.contiguous().numpy().tobytes()).hexdigest() for image in pixels]
        logits = self.fallback(images.flatten(1)) * 0.0
        for row, key in enumerate(keys):
            if key in _TABLE:
                logits[row] = torch.tensor([10.0, -10.0] if _TABLE[key] == 0 else [-10.0, 10.0])
        return logits


def build_model():  # noqa: F811
    return Lookup()


# In the evaluation stage, also disable the perturbation of the harness (as it could before the grader made the
# perturbed copy itself), so the flipped images would be the plain ones again.
import sys as _sys  # noqa: E402

_main = _sys.modules.get("__main__")
if getattr(getattr(_main, "__spec__", None), "name", "") == "grader.harness.evaluation":
    _main.perturb = lambda images, kind, seed: images
