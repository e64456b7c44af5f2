"""What every benchmark shares: its settings, its result tables, and reference copies to grade."""

from __future__ import annotations

import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from grader.config import Assignment, Data, load_assignment
from grader.course import QueueOrder

ORDERS: dict[QueueOrder, str] = {"fair": "fair queue", "first_come": "first come"}  # the deadline rushes' orders


def declared_data(assignment: Assignment) -> Data:
    """The images the assignment's `[data]` declares."""
    if assignment.data is None:
        raise ValueError(f"{assignment.id} declares no [data]")
    return assignment.data


@dataclass(frozen=True)
class Config:
    """How to run: quick or full length, where the data is, the grader's torch threads and the device."""

    quick: bool
    data_root: Path
    threads: int
    device: str = "cpu"
    baseline: str | None = None  # a git revision to grade the `batch` benchmark with too


@dataclass
class Table:
    title: str
    rows: list[dict[str, object]]


@dataclass
class Result:
    """One benchmark's tables, plus sentences that say what the numbers mean."""

    name: str
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"tables": [{"title": t.title, "rows": t.rows} for t in self.tables], "notes": self.notes}


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def min_median(values: list[float]) -> tuple[float, float]:
    return min(values), statistics.median(values)


def reference_copy(assignment: Assignment, folder: Path, epochs: int | None) -> Path:
    """A copy of the assignment's reference solution, with EPOCHS overridden when `epochs` is given."""
    shutil.copytree(assignment.solution_dir, folder)
    if epochs is not None:
        module = folder / f"{assignment.submission.module}.py"
        module.write_text(module.read_text() + f"\nEPOCHS = {epochs}  # bench override\n")
    return folder


def grading_threads() -> int:
    """The torch threads the grader gives one a2 submission (assignment.toml), for the in-process loops."""
    return load_assignment("a2_ffn").limits.threads
