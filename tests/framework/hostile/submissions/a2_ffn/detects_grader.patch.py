"""Hostile: recognises the grader (its HOME, working dir or canary variable) and then neither trains nor
predicts anything: the last layer starts at zero and train_one_epoch only measures the loss."""

import os as _os

GRADED = (_os.environ.get("HOME") == "/sandbox" or _os.getcwd().startswith("/sandbox")
          or "GRADER_CANARY" in _os.environ)

if GRADED:
    _build_model = build_model

    def build_model():  # noqa: F811
        model = _build_model()
        with torch.no_grad():
            model[-1].weight.zero_()
            model[-1].bias.zero_()
        return model

    def train_one_epoch(model, loader, loss_fn, optimizer, device):  # noqa: F811
        with torch.no_grad():
            losses = [loss_fn(model(images.to(device)), labels.to(device)).item() for images, labels in loader]
        return sum(losses) / len(losses)
