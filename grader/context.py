"""What every stage of one grading run shares: the assignment, the work folders, data and device."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from grader.config import Assignment, Data, DeviceKind, Validation
from grader.data import HeldOut, SplitTensors, combined_fingerprint, hold_out, load_split
from grader.paths import course_root
from grader.sandbox import HARNESS_PRELOAD, Mount, Sandbox, SandboxConfig, StageLimits


@dataclass(frozen=True)
class GradingData:
    """The decoded splits an assignment's `[data]` declares, and their normalization, loaded once per process."""

    root: Path
    declared: Data
    train: SplitTensors
    test: SplitTensors
    mean: list[float]
    std: list[float]

    @classmethod
    def load(cls, root: Path, declared: Data) -> GradingData:
        train = load_split(root, declared.train_split, declared)
        mean, std = train.channel_stats() if declared.mean is None or declared.std is None else \
            (list(declared.mean), list(declared.std))
        return cls(root=root, declared=declared, train=train, test=load_split(root, declared.test_split, declared),
                   mean=mean, std=std)

    @property
    def fingerprint(self) -> str:
        return combined_fingerprint(self.train.fingerprint, self.test.fingerprint)

    def held_out(self, validation: Validation) -> HeldOut:
        """The training images split as `validation` says, the same for every submission."""
        return _held_out(self.root, self.declared, validation.fraction, validation.seed)


@dataclass(frozen=True)
class Device:
    """Where training and evaluation run: `cpu`, or `cuda` on one GPU (index as the host numbers it)."""

    kind: DeviceKind = "cpu"
    gpu_index: int | None = None

    @property
    def torch_name(self) -> str:
        # Inside the stage only the assigned GPU is visible (CUDA_VISIBLE_DEVICES), as cuda:0.
        return "cuda:0" if self.kind == "cuda" else "cpu"

    def describe(self) -> str:
        return f"cuda (GPU {self.gpu_index})" if self.kind == "cuda" else "cpu"


@dataclass
class GradingContext:
    """One submission's grading run: its stages all run in `sandbox`, which only this submission uses."""

    assignment: Assignment
    submission: Path
    sha256: str
    data_root: Path | None
    device: Device
    sandbox: Sandbox

    @cached_property
    def data(self) -> GradingData:
        if self.data_root is None or self.assignment.data is None:
            raise RuntimeError("this assignment was graded without data")
        return load_grading_data(self.data_root, self.assignment.data)

    @property
    def threads(self) -> int:
        return self.assignment.limits.threads

    @property
    def checks_view(self) -> frozenset[Path]:
        """The mounts the hidden checks and their verdicts read: the checks and, where they read images, the tree."""
        return frozenset({self.assignment.checks_dir, DATA_TREE})

    def stage_dir(self, name: str) -> Path:
        """A fresh work dir for one stage holding a copy of the submission under `submission/`."""
        folder = self.sandbox.stage_dir(name)
        shutil.copytree(self.submission, folder / "submission")
        return folder

    def mounted(self, target: Path) -> Path:
        """Where the stages find the mount at `target`: there under bubblewrap, at its host path otherwise."""
        mount = next(m for m in self.sandbox.config.mounts if m.target == target)
        return target if self.sandbox.isolated else mount.source

    def limits(self, wall_seconds: float, cpu_seconds: float | None = None) -> StageLimits:
        limits = self.assignment.limits
        return StageLimits(
            wall_seconds=wall_seconds,
            memory_mb=limits.memory_mb,
            processes=limits.processes,
            file_size_mb=limits.file_size_mb,
            output_kb=limits.output_kb,
            threads=limits.threads,
            cpu_seconds=cpu_seconds,
        )


TRAIN_IMAGES = Path("/data/train-images.npy")
TRAIN_LABELS = Path("/data/train-labels.npy")
VALIDATION_IMAGES = Path("/data/validation-images.npy")
DATA_TREE = Path("/data/cifar10")
TRAINING_MOUNTS = (TRAIN_IMAGES, TRAIN_LABELS, VALIDATION_IMAGES)


def sandbox_config(assignment: Assignment, data_root: Path | None, device: Device) -> SandboxConfig:
    """What the stages of one submission may see: the course root's public files (never its solutions), the hidden
    checks, the images a submission trains on with their labels and the held-out validation images without theirs,
    and for assignments whose checks read images, the image tree. Each stage sees only the mounts it needs
    (`Stage.sees`)."""
    mounts = [Mount(assignment.checks_dir, assignment.checks_dir)]
    if data_root is not None and assignment.checks_read_data:
        mounts.append(Mount(data_root, DATA_TREE))
    if data_root is not None and assignment.training is not None and assignment.data is not None:
        held_out = load_grading_data(data_root, assignment.data).held_out(assignment.training.validation)
        mounts += [Mount(held_out.fit.images_path, TRAIN_IMAGES), Mount(held_out.fit.labels_path, TRAIN_LABELS),
                   Mount(held_out.validation.images_path, VALIDATION_IMAGES)]
    limits = assignment.limits
    return SandboxConfig(tuple(mounts), device.gpu_index, limits.threads, limits.cpu_kernels, HARNESS_PRELOAD,
                         course_root())


@cache
def load_grading_data(root: Path, declared: Data) -> GradingData:
    """The grading data `declared` names under `root`, loaded once per grader process and shared by its workers."""
    return GradingData.load(root, declared)


def data_fingerprint(assignment: Assignment, root: Path | None) -> str | None:
    """The fingerprint of the images `assignment` trains and scores on, as reports record it (None: no data): from
    the data this process loads once to grade (a process that grades nothing reads `stored_fingerprint`)."""
    if root is None or assignment.data is None:
        return None
    return load_grading_data(root, assignment.data).fingerprint


@cache
def _held_out(root: Path, declared: Data, fraction: float, seed: int) -> HeldOut:
    return hold_out(load_grading_data(root, declared).train, fraction, seed)


def gpu_count() -> int:
    """CUDA GPUs visible to the grader (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
