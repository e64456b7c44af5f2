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
from typing import Literal

from grader import __version__
from grader.checks import run_checks
from grader.config import Assignment
from grader.context import Device, GradingContext, data_fingerprint, sandbox_config
from grader.errors import GraderError
from grader.evaluation import run_evaluation
from grader.failures import skipped_by, void_checks
from grader.files import trim
from grader.graded_code import keep_graded_code
from grader.intake import Intake, receive
from grader.integrity import findings
from grader.interface import check_interface
from grader.models import (
    CheckResult,
    Environment,
    Failure,
    FailureKind,
    Finding,
    Metrics,
    Report,
    RunnerName,
    SubmissionInfo,
    TrainingResult,
)
from grader.reports import write_all
from grader.sandbox import sandbox_name, warm_sandbox
from grader.scoring import score
from grader.student_traceback import explain_import_failure
from grader.training import run_training

RUNNER_ENV = "GRADER_RUNNER"  # the grader image sets it to "docker"
GPU_NOTE = ("The model was trained on a GPU, whose arithmetic is not bit-for-bit reproducible: a regrade can "
            "differ slightly in the last digits of the accuracy.")


@dataclass
class GradeOptions:
    """How to grade: data, device, and where to say what is happening."""

    data_root: Path | None = None
    device: Device = field(default_factory=Device)
    student_id: str | None = None
    status: Callable[[str], None] = lambda message: None
    # More submissions follow (a batch, a Ray worker): keep the warm sandbox, or start the next one's container.
    reuse_sandbox: bool = False
    node: str = field(default_factory=platform.node)  # what the report names as the machine that graded


@dataclass
class Graded:
    """What the stages produced for one submission."""

    failures: list[Failure]
    checks: list[CheckResult] = field(default_factory=list)
    training: TrainingResult | None = None
    metrics: Metrics | None = None
    integrity: list[Finding] = field(default_factory=list)


def grade(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """Grade `source` and write every report file into `out_dir`; student code cannot make this raise."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="grader-"))
    try:
        options.status("intake")
        intake = receive(assignment, source, work / "submission", options.student_id)
        report = _grade_intake(assignment, intake, options)
        keep_graded_code(intake.folder, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.seconds = time.monotonic() - started
    options.status("writing reports")
    write_all(report, assignment, out_dir)
    return report


def failed_report(assignment: Assignment, source: Path, student_id: str, failure: Failure,
                  runner: Literal["local", "docker"] = "local", node: str | None = None) -> Report:
    """The report for a submission graded nowhere (the grader failed, or its container or worker did).

    `node` is the machine that failed to grade it (by default this one; "" when no node took it)."""
    info = SubmissionInfo(student_id=student_id, source=source.name, sha256="", files=[])
    return Report(
        assignment_id=assignment.id, assignment_version=assignment.version, submission=info,
        environment=Environment(grader_version=__version__, python=platform.python_version(),
                                torch_version=version("torch"), device="none", seed=assignment.seed,
                                sandbox=sandbox_name(), runner=runner,
                                node=platform.node() if node is None else node),
        score=score(assignment, [], None, [failure]), failures=[failure],
    )


def write_failed_report(assignment: Assignment, source: Path, student_id: str, failure: Failure, out_dir: Path,
                        runner: Literal["local", "docker"] = "local", node: str | None = None) -> Report:
    """`failed_report`, written into `out_dir` as every report is: what every runner and the service use."""
    report = failed_report(assignment, source, student_id, failure, runner, node)
    write_all(report, assignment, out_dir)
    return report


def grader_failure(details: str) -> Failure:
    """The failure of a submission the grader itself failed on, so no student is left without a report."""
    return Failure(stage="grader", kind=FailureKind.CRASH, details=trim(details),
                   message="The grader failed on this submission; a TA will look at it.")


def _grade_intake(assignment: Assignment, intake: Intake, options: GradeOptions) -> Report:
    graded = Graded(failures=[intake.failure] if intake.failure else [])
    device = options.device
    if not graded.failures:
        config = sandbox_config(assignment, options.data_root, device)
        with warm_sandbox(config, options.reuse_sandbox) as box:
            ctx = GradingContext(assignment, intake.folder, intake.info.sha256, options.data_root, device, box)
            _run_stages(ctx, graded, options.status)
    graded.failures[:] = [explain_import_failure(f, assignment, intake.notebook) for f in graded.failures]
    return Report(
        assignment_id=assignment.id,
        assignment_version=assignment.version,
        submission=intake.info,
        environment=_environment(assignment, options),
        checks=void_checks(graded.checks, graded.failures),
        training=graded.training,
        metrics=graded.metrics,
        score=score(assignment, graded.checks, graded.metrics, graded.failures, graded.integrity),
        failures=graded.failures,
        integrity=graded.integrity,
        notes=[*intake.info.notes, *_notes(assignment, graded)],
    )


def _run_stages(ctx: GradingContext, graded: Graded, status: Callable[[str], None]) -> None:
    """Each stage in turn, unless a failure so far skips it (grader.failures) or its input is missing."""
    failures = graded.failures
    if not skipped_by("import", failures):
        status("import")
        failures += check_interface(ctx).failures
    if not skipped_by("checks", failures):
        status("checks")
        checked = run_checks(ctx)
        graded.checks = checked.product or []
        failures += checked.failures
    if ctx.assignment.training is None or skipped_by("training", failures):
        return
    status("training")
    trained = run_training(ctx, lambda done, planned: status(f"training epoch {done}/{planned}"))
    failures += trained.failures
    graded.training = trained.product.result if trained.product else None
    checkpoint = trained.product.checkpoint if trained.product else None
    if checkpoint is None or skipped_by("evaluation", failures):
        return
    status("evaluation")
    evaluated = run_evaluation(ctx, checkpoint)
    failures += evaluated.failures
    graded.metrics = evaluated.product
    if graded.metrics is not None and graded.training is not None and ctx.assignment.metric is not None:
        graded.integrity = findings(ctx.assignment.metric, graded.training, graded.metrics)


def _notes(assignment: Assignment, graded: Graded) -> list[str]:
    """What the student should know beyond the score: how close training came to its budget, and GPU arithmetic."""
    notes: list[str] = []
    training = graded.training
    if training is None or assignment.training is None:
        return notes
    if training.budget_clock == "wall" and training.device.startswith("cuda"):
        notes.append(GPU_NOTE)
    share = training.budget_used / training.budget_seconds if training.budget_seconds else 0.0
    if share >= assignment.training.budget_warning_at:
        clock = "CPU" if training.budget_clock == "cpu" else "wall-clock"
        notes.append(f"Training used {share:.0%} of its {clock} budget ({training.budget_used:.0f} of "
                     f"{training.budget_seconds:g} s): a slower model or more epochs would be cut off.")
    return notes


def _runner() -> RunnerName:
    """Where this grading runs: the grader image sets RUNNER_ENV, a local grading leaves it unset."""
    runner = os.environ.get(RUNNER_ENV, "local")
    if runner == "docker":
        return "docker"
    if runner != "local":
        raise GraderError(f"{RUNNER_ENV}={runner!r} names no runner; it is local or docker.")
    return "local"


def _environment(assignment: Assignment, options: GradeOptions) -> Environment:
    return Environment(
        grader_version=__version__,
        python=platform.python_version(),
        torch_version=version("torch"),
        device=options.device.describe(),
        seed=assignment.seed,
        data_fingerprint=data_fingerprint(assignment, options.data_root),
        sandbox=sandbox_name(),
        runner=_runner(),
        node=options.node,
    )
