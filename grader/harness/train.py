"""In-sandbox training stage: train the student's model with the student's own functions.

Usage: python -m grader.harness.train SPEC_JSON
The spec names the submission folder, the training tensors, normalization, device, seed, threads
and budget. Progress goes to `progress.jsonl` (one JSON line per event) and the weights after
every finished epoch to `checkpoint.pt`, so a kill mid-epoch still leaves the last good epoch.
"""

from __future__ import annotations

import errno
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from grader.harness.loaders import normalize, train_loader
from grader.harness.submission import exit_now, import_submission, trimmed_traceback


class Progress:
    """Appends one JSON line per event to the progress file, flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def write(self, event: str, **fields) -> None:
        self._file.write(json.dumps({"event": event, **fields}) + "\n")
        self._file.flush()


class RecordingLoss(nn.Module):
    """Cross-entropy that also counts correct predictions, so train accuracy costs no extra pass."""

    def __init__(self) -> None:
        super().__init__()
        self.loss = nn.CrossEntropyLoss()
        self.correct = self.seen = 0

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            if logits.ndim == 2 and logits.shape[0] == targets.shape[0]:
                self.correct += int((logits.argmax(dim=1) == targets).sum())
                self.seen += int(targets.shape[0])
        return self.loss(logits, targets)

    def accuracy_and_reset(self) -> float:
        accuracy = self.correct / self.seen if self.seen else 0.0
        self.correct = self.seen = 0
        return accuracy


def refuse_to_train(model: nn.Module, parameters: int, spec: dict) -> dict | None:
    """A failure record for a model the assignment does not allow, before any training time is spent."""
    limit = spec["max_parameters"]
    if parameters > limit:
        return {"kind": "too_many_parameters",
                "message": f"the model has {parameters:,} parameters, more than the limit of {limit:,}."}
    leaves = {type(m).__name__ for m in model.modules() if not list(m.children())}
    forbidden = sorted(leaves - set(spec["allowed_layers"]))
    if forbidden:
        return {"kind": "forbidden_layer",
                "message": f"the model uses {', '.join(forbidden)}, which this assignment does not allow."}
    return None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(model: nn.Module, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


def train(spec: dict, progress: Progress) -> None:
    torch.set_num_threads(spec["threads"])
    seed_everything(spec["seed"])
    device = torch.device(spec["device"])
    module = import_submission(Path(spec["submission"]), spec["module"])
    model = module.build_model().to(device)
    parameters = sum(p.numel() for p in model.parameters())
    epochs = int(module.EPOCHS)
    progress.write("start", parameters=parameters, epochs=epochs, device=str(device))
    refusal = refuse_to_train(model, parameters, spec)
    if refusal:
        progress.write("failed", **refusal)
        return
    optimizer = module.make_optimizer(model)
    loss_fn = RecordingLoss()
    transform = module.train_transform() if hasattr(module, "train_transform") else None
    images = normalize(np.load(spec["images"], mmap_mode="r"), spec["mean"], spec["std"])
    labels = torch.as_tensor(np.load(spec["labels"]))
    loader = train_loader(images, labels, int(module.BATCH_SIZE), spec["seed"], transform)
    started = time.monotonic()
    for epoch in range(1, epochs + 1):
        if time.monotonic() - started >= spec["budget_seconds"]:
            progress.write("stopped", reason="budget")
            return
        epoch_start = time.monotonic()
        model.train()
        returned = module.train_one_epoch(model, loader, loss_fn, optimizer, device)
        if not isinstance(returned, (float, int, torch.Tensor)):
            progress.write("failed", kind="wrong_output",
                           message=f"train_one_epoch returned {type(returned).__name__}, not the mean loss as a float.")
            return
        loss = float(returned)
        if not math.isfinite(loss):
            progress.write("failed", kind="nan_loss", message=f"The training loss became {loss} in epoch {epoch}.")
            return
        save_checkpoint(model, Path(spec["checkpoint"]))
        progress.write("epoch", epoch=epoch, loss=loss, train_accuracy=loss_fn.accuracy_and_reset(),
                       seconds=time.monotonic() - epoch_start)
    progress.write("stopped", reason="completed")


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    progress = Progress(Path(spec["progress"]))
    try:
        train(spec, progress)
    except BaseException as exc:  # noqa: BLE001 - whatever student code raises becomes the report
        progress.write("failed", kind=failure_kind(exc), message=f"{type(exc).__name__}: {str(exc)[:300]}",
                       details=trimmed_traceback(exc))


def failure_kind(exc: BaseException) -> str:
    """The failure kind of an exception out of student code: GPU memory, the file size limit, or any other."""
    if "out of memory" in str(exc).lower():
        return "out_of_memory"
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "file_too_large"
    return "exception"


if __name__ == "__main__":
    main(sys.argv[1])
    exit_now()
