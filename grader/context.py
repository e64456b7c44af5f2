"""What every stage of one grading run shares: the assignment, the work folders, data and device."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from grader.config import Assignment
from grader.data import SplitTensors, load_split
from grader.sandbox import HARNESS_PRELOAD, Mount, Sandbox, SandboxConfig, StageLimits


@dataclass(frozen=True)
class GradingData:
    """The decoded CIFAR-2 splits and the training-set normalization, loaded once per grader process."""

    root: Path
    train: SplitTensors
    val: SplitTensors
    mean: list[float]
    std: list[float]

    @classmethod
    def load(cls, root: Path) -> GradingData:
        train = load_split(root, "train")
        mean, std = train.channel_stats()
        return cls(root=root, train=train, val=load_split(root, "test"), mean=mean, std=std)

    @property
    def fingerprint(self) -> str:
        return f"train:{self.train.fingerprint},test:{self.val.fingerprint}"


@dataclass(frozen=True)
class Device:
    """Where training and evaluation run: `cpu`, or `cuda` on one GPU (index as the host numbers it)."""

    kind: str = "cpu"
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
        if self.data_root is None:
            raise RuntimeError("this assignment was graded without data")
        return load_grading_data(self.data_root)

    @property
    def threads(self) -> int:
        return self.assignment.limits.threads

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
DATA_TREE = Path("/data/cifar10")


def sandbox_config(assignment: Assignment, data_root: Path | None, device: Device) -> SandboxConfig:
    """What the stages of one submission may see: the hidden checks, the training tensors (no validation labels),
    and for assignments whose checks read images, the image tree."""
    mounts = [Mount(assignment.checks_dir, assignment.checks_dir)]
    if data_root is not None and assignment.checks_read_data:
        mounts.append(Mount(data_root, DATA_TREE))
    if data_root is not None and assignment.training is not None:
        train = load_grading_data(data_root).train
        mounts += [Mount(train.images_path, TRAIN_IMAGES), Mount(train.labels_path, TRAIN_LABELS)]
    limits = assignment.limits
    return SandboxConfig(tuple(mounts), device.gpu_index, limits.threads, limits.cpu_kernels, HARNESS_PRELOAD)


@cache
def load_grading_data(root: Path) -> GradingData:
    """The grading data of `root`, loaded once per grader process and shared by its workers."""
    return GradingData.load(root)


def gpu_count() -> int:
    """CUDA GPUs visible to the grader (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
