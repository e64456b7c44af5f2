"""Harness efficiency: the a2 reference trained by a bare loop over tensors in memory, and by the grader.

Three loops train the same model with the same batch size, epochs and threads, interleaved per repetition:
the bare loop, the harness's own loop run in this process (grader loader, RecordingLoss, the reference's
train_one_epoch, a checkpoint per epoch), and the sandboxed harness through run_training.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn
from torchvision import transforms

from bench.common import Config, Result, Table, declared_data, min_median, reference_copy
from grader.config import Assignment, load_assignment
from grader.context import Device, GradingContext, load_grading_data, sandbox_config
from grader.harness.loaders import normalize, train_loader
from grader.harness.submission import import_submission
from grader.harness.training import RecordingLoss, make_reproducible, save_checkpoint
from grader.sandbox import warm_sandbox
from grader.training import run_training

NAME = "harness"
ASSIGNMENT = "a2_ffn"
TARGET_RATIO = 0.95


def bare_epochs(module: ModuleType, images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int,
                device: torch.device) -> list[float]:
    """The fastest honest loop: permuted indexing, a random half of each batch flipped in one op."""
    make_reproducible(seed)
    model = module.build_model().to(device)
    optimizer = module.make_optimizer(model)
    loss_fn = nn.CrossEntropyLoss()
    flip_p = module.train_transform().p
    images, labels = images.to(device), labels.to(device)
    batch_size, seconds = int(module.BATCH_SIZE), []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(labels), device=device)
        total = 0.0
        for i in range(0, len(labels), batch_size):
            index = order[i : i + batch_size]
            x, y = images[index], labels[index]
            flip = torch.rand(len(index), device=device) < flip_p
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += loss.item()
        seconds.append(time.perf_counter() - start)
    return seconds


def in_process_epochs(module: ModuleType, images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int,
                      device: torch.device, checkpoint: Path) -> list[float]:
    """The harness's epoch exactly as grader/harness/training.py runs it, but in this process."""
    make_reproducible(seed)
    model = module.build_model().to(device)
    optimizer = module.make_optimizer(model)
    loss_fn = RecordingLoss()
    loader = train_loader(images, labels, int(module.BATCH_SIZE), seed, module.train_transform())
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        module.train_one_epoch(model, loader, loss_fn, optimizer, device)
        save_checkpoint(model, checkpoint)
        loss_fn.accuracy_and_reset()
        seconds.append(time.perf_counter() - start)
    return seconds


def harness_epochs(assignment: Assignment, submission: Path, cfg: Config) -> tuple[list[float], float]:
    """Epoch seconds as the harness measured them, and the stage's start-up (stage seconds minus epochs)."""
    device = Device("cuda", 0) if cfg.device == "cuda" else Device()
    with warm_sandbox(sandbox_config(assignment, cfg.data_root, device)) as box:
        ctx = GradingContext(assignment, submission, "bench", cfg.data_root, device, box)
        outcome = run_training(ctx)
    if outcome.failures or outcome.product is None:
        raise RuntimeError(f"the harness failed: {outcome.failures[0].message if outcome.failures else '?'}")
    result = outcome.product.result
    seconds = [epoch.seconds for epoch in result.epochs]
    return seconds, result.seconds - sum(seconds)


def loader_epoch(images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int, how: str) -> float:
    """Seconds for one epoch of batches without a model: grader loader, per-image flips, or bare indexing."""
    flip = transforms.RandomHorizontalFlip()
    start = time.perf_counter()
    if how == "bare":
        order = torch.randperm(len(labels))
        for i in range(0, len(labels), batch_size):
            x = images[order[i : i + batch_size]]
            torch.where((torch.rand(len(x)) < 0.5)[:, None, None, None], x.flip(-1), x)
    elif how == "per-image":
        for x, _ in train_loader(images, labels, batch_size, seed):
            torch.stack([flip(image) for image in x])
    else:
        for _ in train_loader(images, labels, batch_size, seed, flip):
            pass
    return time.perf_counter() - start


def run(cfg: Config) -> Result:
    assignment = load_assignment(ASSIGNMENT)
    reference = import_submission(assignment.solution_dir, assignment.submission.module)
    if not isinstance(reference.train_transform(), transforms.RandomHorizontalFlip):
        raise RuntimeError("the bare loop mirrors a RandomHorizontalFlip train_transform; the reference changed")
    epochs, reps = (1, 3) if cfg.quick else (int(reference.EPOCHS), 3)
    data = load_grading_data(cfg.data_root, declared_data(assignment))
    images = normalize(data.train.images, data.mean, data.std)
    labels = torch.as_tensor(np.asarray(data.train.labels))
    device, seed, batch_size = torch.device(cfg.device), assignment.seed, int(reference.BATCH_SIZE)
    times: dict[str, list[float]] = {"bare loop": [], "harness loop, in process": [], "sandboxed harness": []}
    loader_times: dict[str, list[float]] = {"bare": [], "per-image": [], "grader": []}
    startups = []
    with tempfile.TemporaryDirectory(prefix="bench-harness-") as tmp:
        submission = reference_copy(assignment, Path(tmp) / "submission", epochs)
        for _ in range(reps):
            times["bare loop"] += bare_epochs(reference, images, labels, epochs, seed, device)
            times["harness loop, in process"] += in_process_epochs(
                reference, images, labels, epochs, seed, device, Path(tmp) / "checkpoint.pt")
            harness, startup = harness_epochs(assignment, submission, cfg)
            times["sandboxed harness"] += harness
            startups.append(startup)
            for how, seconds in loader_times.items():
                seconds.append(loader_epoch(images, labels, batch_size, seed, how))
    bare_min, bare_median = min_median(times["bare loop"])
    rows = []
    for variant, seconds in times.items():
        low, mid = min_median(seconds)
        rows.append({"variant": variant, "epochs timed": len(seconds), "s/epoch min": low, "s/epoch median": mid,
                     "bare/this (min)": bare_min / low, "bare/this (median)": bare_median / mid})
    loader_names = {"bare": "bare indexing + one flip op per batch",
                    "per-image": "grader loader + per-image RandomHorizontalFlip loop",
                    "grader": "grader loader with the reference transform, as is"}
    loader_rows = [{"batches of one epoch": loader_names[how], "s min": min_median(s)[0], "s median": min_median(s)[1]}
                   for how, s in loader_times.items()]
    ratio = rows[-1]["bare/this (median)"]
    target = "met" if ratio >= TARGET_RATIO else "NOT met"
    return Result(NAME, [
        Table(f"a2 reference: {epochs} epoch(s) x {reps} repetitions, batch {batch_size}, "
              f"{cfg.threads} threads, {cfg.device}", rows),
        Table("sandboxed harness start-up (stage seconds minus its epochs)",
              [{"runs": len(startups), "s min": min(startups), "s median": min_median(startups)[1]}]),
        Table("data pipeline alone: one epoch of batches, no model", loader_rows),
    ], [f"target bare/harness >= {TARGET_RATIO} (median, CPU): {target} ({ratio:.3f})",
        "the bare loop flips a random half of each batch in one tensor op, as RandomHorizontalFlip does per image"])
