"""Import stage: the submission imports in time and defines the required names, kinds and signatures."""

from __future__ import annotations

import json

from grader.context import GradingContext
from grader.models import Failure, FailureKind
from grader.sandbox import SandboxResult, python_stage, run

RESULT_FILE = "interface.json"


def check_interface(ctx: GradingContext) -> list[Failure]:
    """Failures of the import stage; an empty list means the later stages can use the module."""
    workdir = ctx.stage_dir("import")
    args = [ctx.assignment.id, "submission", RESULT_FILE]
    limits = ctx.limits(ctx.assignment.limits.import_seconds)
    result = run(python_stage("grader.harness.interface", args, workdir, limits))
    path = workdir / RESULT_FILE
    if not path.is_file():
        return [stage_failure("import", result, f"importing {ctx.assignment.submission.module}.py")]
    try:
        records = json.loads(path.read_text())["failures"]
        return [Failure(stage="import", **record) for record in records]
    except (ValueError, KeyError, TypeError):
        return [Failure(stage="import", kind=FailureKind.CRASH, message="The import stage left an unreadable result.")]


def stage_failure(stage: str, result: SandboxResult, doing: str) -> Failure:
    """One sentence for a stage that ended without writing its result."""
    limits_hit = [
        (result.timed_out, FailureKind.TIMEOUT, f"took longer than {result.limit_seconds:g} s"),
        (result.out_of_memory, FailureKind.OUT_OF_MEMORY, f"used more than {result.limit_memory_mb} MB of memory"),
        (result.too_many_processes, FailureKind.CRASH, "started too many processes"),
    ]
    for hit, kind, what in limits_hit:
        if hit:
            return Failure(stage=stage, kind=kind, message=f"The submission {what} while {doing} and was stopped.",
                           details=result.output[-4000:])
    if result.killed_by:
        message = f"The process crashed ({result.killed_by}) while {doing}."
    elif result.returncode == 0:
        return Failure(stage=stage, kind=FailureKind.EARLY_EXIT, details=result.output[-4000:],
                       message=f"The submission ended the process early (exit code 0) while {doing}.")
    else:
        message = f"The process exited with code {result.returncode} while {doing}."
    return Failure(stage=stage, kind=FailureKind.CRASH, message=message, details=result.output[-4000:])
