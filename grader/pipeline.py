"""Grade one submission: intake, import, checks, training, evaluation, score, reports, in that order."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from grader import __version__
from grader.checks import run_checks
from grader.config import Assignment
from grader.context import Device, GradingContext
from grader.evaluation import run_evaluation
from grader.intake import Intake, receive
from grader.interface import check_interface
from grader.models import (
    CheckResult,
    Environment,
    Failure,
    FailureKind,
    Metrics,
    Report,
    SubmissionInfo,
    TrainingResult,
)
from grader.reports import write_all
from grader.sandbox import fallback_warning, sandbox_name
from grader.scoring import score
from grader.training import run_training

RUNNER_ENV = "GRADER_RUNNER"  # the grader image sets it to "docker"
BLOCKING_KINDS = {"syntax_error", "import_error", "early_exit", "timeout", "out_of_memory", "crash"}


@dataclass
class GradeOptions:
    """How to grade: data, device, and where to say what is happening."""

    data_root: Path | None = None
    device: Device = field(default_factory=Device)
    student_id: str | None = None
    status: Callable[[str], None] = lambda message: None
    node: str = field(default_factory=platform.node)  # what the report names as the machine that graded


def grade(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """Grade `source` and write every report file into `out_dir`; student code cannot make this raise."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="grader-"))
    try:
        options.status("intake")
        intake = receive(assignment, source, work / "submission", options.student_id)
        report = _grade_intake(assignment, intake, work, options)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    options.status("writing reports")
    write_all(report, assignment, out_dir)
    return report


def failed_report(assignment: Assignment, source: Path, student_id: str, details: str) -> Report:
    """The report for a submission the grader itself failed on, so no student is left without one."""
    failure = Failure(stage="intake", kind=FailureKind.CRASH, details=details[-4000:],
                      message="The grader failed on this submission; a TA will look at it.")
    info = SubmissionInfo(student_id=student_id, source=source.name, sha256="", files=[])
    return Report(
        assignment_id=assignment.id, assignment_version=assignment.version, submission=info,
        environment=Environment(grader_version=__version__, python=platform.python_version(),
                                torch_version=version("torch"), device="none", seed=assignment.seed,
                                sandbox=sandbox_name(), node=platform.node()),
        score=score(assignment, [], None, [failure]), failures=[failure],
    )


def _grade_intake(assignment: Assignment, intake: Intake, work: Path, options: GradeOptions) -> Report:
    failures = [intake.failure] if intake.failure else []
    checks: list[CheckResult] = []
    training: TrainingResult | None = None
    metrics: Metrics | None = None
    ctx = GradingContext(assignment, intake.folder, work, options.data_root, options.device)
    if not failures:
        checks, training, metrics = _run_stages(ctx, failures, options.status)
    notes = list(intake.info.notes)
    if warning := fallback_warning():
        notes.append(warning)
    return Report(
        assignment_id=assignment.id,
        assignment_version=assignment.version,
        submission=intake.info,
        environment=_environment(ctx, options.node),
        checks=checks,
        training=training,
        metrics=metrics,
        score=score(assignment, checks, metrics, failures),
        failures=failures,
        notes=notes,
    )


def _run_stages(ctx: GradingContext, failures: list[Failure],
                status: Callable[[str], None]) -> tuple[list[CheckResult], TrainingResult | None, Metrics | None]:
    status("import")
    failures += check_interface(ctx)
    if any(f.kind in BLOCKING_KINDS for f in failures):
        return [], None, None
    status("checks")
    outcome = run_checks(ctx)
    failures += [outcome.failure] if outcome.failure else []
    if ctx.assignment.training is None or any(_blocks_training(f) for f in failures):
        return outcome.results, None, None
    status("training")
    trained = run_training(ctx, lambda done, planned: status(f"training epoch {done}/{planned}"))
    failures += [trained.failure] if trained.failure else []
    if trained.checkpoint is None:
        return outcome.results, trained.result, None
    status("evaluation")
    evaluated = run_evaluation(ctx, trained.checkpoint)
    failures += [evaluated.failure] if evaluated.failure else []
    return outcome.results, trained.result, evaluated.metrics


def _blocks_training(failure: Failure) -> bool:
    """The grader trains only a submission with a complete interface and an untampered test run."""
    return failure.stage == "import" or failure.kind == "tampering"


def _environment(ctx: GradingContext, node: str) -> Environment:
    fingerprint = ctx.data.fingerprint if ctx.data_root is not None else None
    return Environment(
        grader_version=__version__,
        python=platform.python_version(),
        torch_version=version("torch"),
        device=ctx.device.describe(),
        seed=ctx.assignment.seed,
        data_fingerprint=fingerprint,
        sandbox=sandbox_name(),
        runner=os.environ.get(RUNNER_ENV, "local"),
        node=node,
    )
