"""What every host stage returns, and the sentence for a stage that ended without saying why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from grader.failures import StageName
from grader.files import trim
from grader.models import Failure, FailureKind
from grader.protocol import FailureRecord
from grader.sandbox import SandboxResult

ProductT = TypeVar("ProductT")


@dataclass
class StageOutcome(Generic[ProductT]):
    """A stage's product (None when it produced nothing usable) and its failures."""

    product: ProductT | None = None
    failures: list[Failure] = field(default_factory=list)


def from_record(stage: StageName, record: FailureRecord) -> Failure:
    """A failure the stage reported itself, with its details trimmed to what a report keeps."""
    return Failure(stage=stage, kind=record.kind, message=record.message, details=trim(record.details))


def stage_failure(stage: StageName, result: SandboxResult, doing: str) -> Failure:
    """One sentence for a stage that ended without writing its result."""
    details = trim(result.output)
    if hit := _limit_hit(result):
        kind, what = hit
        return Failure(stage=stage, kind=kind, message=f"The submission {what} while {doing} and was stopped.",
                       details=details)
    if result.killed_by:
        message = f"The process crashed ({result.killed_by}) while {doing}."
    elif result.returncode == 0:
        return Failure(stage=stage, kind=FailureKind.EARLY_EXIT, details=details,
                       message=f"The submission ended the process early (exit code 0) while {doing}.")
    else:
        message = f"The process exited with code {result.returncode} while {doing}."
    return Failure(stage=stage, kind=FailureKind.CRASH, message=message, details=details)


def _limit_hit(result: SandboxResult) -> tuple[FailureKind, str] | None:
    """The limit the sandbox stopped the stage at, and what the submission did, if it stopped it."""
    if result.timed_out:
        return FailureKind.TIMEOUT, f"took longer than {result.limit_seconds:g} s"
    if result.out_of_cpu:
        return FailureKind.TIMEOUT, f"used more than {result.limit_cpu_seconds:g} s of CPU time per thread"
    if result.out_of_memory:
        return FailureKind.OUT_OF_MEMORY, f"used more than {result.limit_memory_mb} MB of memory"
    if result.too_many_processes:
        return FailureKind.CRASH, "started too many processes"
    return None
