"""Checks stage: the assignment's hidden pytest checks, run in the sandbox against the submission.

Outcomes and observations come from the grader's pytest plugin as typed JSON lines, never from
console text. A check that kills the interpreter is recorded as crashed and pytest is started
again for the checks that have not run yet, so one crash costs one check. A canary check that
must fail proves the run was not tampered with. Checks that observe are then judged by their
verdicts in a clean process (`grader.harness.verdicts`), out of the submission's reach.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.config import Assignment
from grader.context import DATA_TREE, GradingContext
from grader.data import DATA_DIR_ENV
from grader.files import trim
from grader.models import CheckResult, Failure, FailureKind
from grader.paths import PACKAGE_DIR, course_root
from grader.protocol import (
    CHECK_EVENTS,
    TRAINING_CALLS,
    CheckObserved,
    CheckReported,
    ChecksCollected,
    ChecksFinished,
    CheckStarted,
    CollectedCheck,
    Verdicts,
    VerdictSpec,
    read_record,
    read_records,
    write_spec,
)
from grader.sandbox import SandboxResult, python_stage
from grader.stage import StageOutcome

RESULTS_FILE = "results.jsonl"
CANARY = PACKAGE_DIR / "harness" / "canary_check.py"
VERDICT_SECONDS = 60.0
TAMPERED = ("The hidden checks reported an impossible result, so the test run was tampered with; "
            "the checks earn no points.")
UNJUDGED = "The check's observations could not be judged."
Outcome = Literal["passed", "failed", "error", "timeout", "crashed", "not_run"]


@dataclass
class Check:
    """How one check ended, as far as the sandboxed pytest runs tell."""

    outcome: Outcome
    message: str = ""
    details: str = ""
    seconds: float = 0.0


@dataclass
class _Run:
    """What one pytest process reported."""

    collected: list[CollectedCheck] | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    observed: list[CheckObserved] = field(default_factory=list)
    finished: bool = False


def run_checks(ctx: GradingContext) -> StageOutcome[list[CheckResult]]:
    """Run every hidden check, restarting pytest after a crash, then judge what the checks observed."""
    nonce = secrets.token_hex(8)
    deadline = time.monotonic() + ctx.assignment.limits.checks_total_seconds
    collected: list[CollectedCheck] | None = None
    checks: dict[str, Check] = {}
    observed: list[CheckObserved] = []
    hung: list[str] = []
    attempt, result = 0, None
    while time.monotonic() < deadline:
        attempt += 1
        run, result = _run_pytest(ctx, nonce, sorted(checks), hung, deadline - time.monotonic(), attempt)
        collected = collected or run.collected
        checks |= run.checks
        observed += run.observed
        crashed = next((n for n in reversed(run.started) if n not in run.checks), None)
        if run.finished or collected is None or crashed is None:
            break
        checks[crashed] = _crash(result)
        if checks[crashed].outcome == "timeout":
            hung += next((c.calls for c in collected if c.nodeid == crashed), [])
    if collected is None:
        return StageOutcome(failures=[Failure(stage="checks", kind=FailureKind.CRASH,
                                              details=trim(result.output) if result else "",
                                              message="The hidden checks could not even be collected.")])
    verdicts = _judge(ctx, observed)
    results = check_results(ctx.assignment, collected, checks, verdicts)
    return StageOutcome(results, _failures(ctx, collected, checks, nonce, verdicts))


def canary_nodeid() -> str:
    """The canary's pytest node id: its path from the course root, or none where it lies outside (pytest names a file
    outside its rootdir that it was given by nothing but its function)."""
    root = course_root()
    return f"{CANARY.relative_to(root).as_posix() if CANARY.is_relative_to(root) else ''}::test_canary"


def _run_pytest(ctx: GradingContext, nonce: str, done: list[str], hung: list[str], seconds: float,
                attempt: int) -> tuple[_Run, SandboxResult]:
    workdir = ctx.stage_dir(f"checks-{attempt}")
    assignment = ctx.assignment
    args = [
        str(assignment.checks_dir), str(CANARY),
        "-p", "grader.pytest_plugin", "-p", "pytest_timeout", "-p", "no:cacheprovider",
        "--noconftest", "-c", str(PACKAGE_DIR / "harness" / "pytest.ini"), "--rootdir", str(course_root()),
        "--submission", "submission", "--results", RESULTS_FILE,
        "--timeout", f"{assignment.limits.check_seconds:g}", "-q", "--no-header", "-p", "no:warnings",
    ]
    if assignment.checks_read_data and ctx.data_root is not None:
        args += ["--data-root", str(ctx.mounted(DATA_TREE))]
    for nodeid in done:
        args += ["--deselect", nodeid]
    for name in hung:
        args += ["--timed-out", name]
    env = {"GRADER_CANARY": nonce, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = ctx.sandbox.run(python_stage("grader.harness.checks", args, workdir, ctx.limits(seconds), env=env,
                                          sees=ctx.checks_view))
    return _read_results(workdir / RESULTS_FILE), result


def _read_results(path: Path) -> _Run:
    run = _Run()
    for record in read_records(path, CHECK_EVENTS):
        if isinstance(record, ChecksCollected):
            run.collected = record.items
        elif isinstance(record, CheckStarted):
            run.started.append(record.nodeid)
        elif isinstance(record, CheckReported):
            previous = run.checks.get(record.nodeid)
            if previous is None or previous.outcome == "passed":  # the first failure of setup, call or teardown
                run.checks[record.nodeid] = _reported(record)
        elif isinstance(record, CheckObserved):
            run.observed.append(record)
        elif isinstance(record, ChecksFinished):
            run.finished = True
    return run


def _reported(record: CheckReported) -> Check:
    if record.timed_out:
        outcome: Outcome = "timeout"
    elif record.outcome == "failed":
        outcome = "failed" if record.when == "call" else "error"
    else:
        outcome = "passed" if record.outcome == "passed" else "not_run"
    return Check(outcome, record.message, record.details, record.seconds)


def _crash(result: SandboxResult) -> Check:
    outcome: Outcome
    if result.timed_out:
        outcome, message = "timeout", "The check ran out of time."
    elif result.out_of_memory:
        outcome, message = "crashed", f"The check used more than {result.limit_memory_mb} MB of memory."
    elif result.killed_by:
        outcome, message = "crashed", f"The check crashed the Python interpreter ({result.killed_by})."
    else:
        outcome, message = "crashed", f"The check ended the test process (exit code {result.returncode})."
    return Check(outcome, message, trim(result.output), result.seconds)


def _judge(ctx: GradingContext, observed: list[CheckObserved]) -> Verdicts | None:
    """The verdicts on what the checks observed, from a fresh fork that never ran student code."""
    workdir = ctx.sandbox.stage_dir("verdicts")
    spec = VerdictSpec(assignment_id=ctx.assignment.id)
    (workdir / spec.observations).write_text("".join(o.model_dump_json() + "\n" for o in observed))
    write_spec(workdir, spec)
    # Verdicts of checks that read the image tree recompute their answers from it, never from the observation.
    env = {DATA_DIR_ENV: str(ctx.mounted(DATA_TREE))} if ctx.assignment.checks_read_data and ctx.data_root else {}
    ctx.sandbox.run(python_stage("grader.harness.verdicts", [], workdir, ctx.limits(VERDICT_SECONDS), env=env,
                                 sees=ctx.checks_view))
    return read_record(workdir / spec.result, Verdicts)


def _judged(check: Check, nodeid: str, verdicts: Verdicts | None) -> Check:
    """The check as its verdict has it: a pass in the sandbox stands only if every observation passes."""
    if check.outcome != "passed":
        return check
    if verdicts is None:
        return Check("failed", UNJUDGED, seconds=check.seconds)
    if nodeid.rsplit("::", 1)[-1].split("[", 1)[0] not in verdicts.judged_checks:
        return check
    failures = [j.failure for j in verdicts.judgements if j.nodeid == nodeid]
    if not failures:
        return Check("failed", "The check recorded nothing to judge.", seconds=check.seconds)
    failure = next((f for f in failures if f is not None), None)
    return check if failure is None else Check("failed", failure, seconds=check.seconds)


def check_results(assignment: Assignment, collected: list[CollectedCheck], checks: dict[str, Check],
                  verdicts: Verdicts | None) -> list[CheckResult]:
    """One result per collected check: its outcome after the verdict, and its share of its group's points."""
    items = [item for item in collected if item.nodeid != canary_nodeid()]
    counts = {g.name: sum(1 for item in items if item.group == g.name) for g in assignment.checks}
    results = []
    for item in items:
        if item.group not in counts:
            continue  # a check without a known group earns nothing; the framework tests forbid it
        max_points = assignment.group(item.group).points / counts[item.group]
        check = _judged(checks.get(item.nodeid, Check("not_run", "The check did not run.")), item.nodeid, verdicts)
        results.append(CheckResult(
            nodeid=item.nodeid, group=item.group, outcome=check.outcome, max_points=max_points,
            points=max_points if check.outcome == "passed" else 0.0, message=check.message, details=check.details,
            seconds=check.seconds))
    return results


def _failures(ctx: GradingContext, collected: list[CollectedCheck], checks: dict[str, Check], nonce: str,
              verdicts: Verdicts | None) -> list[Failure]:
    failures = []
    canary = checks.get(canary_nodeid(), Check("not_run"))
    if canary.outcome != "failed" or nonce not in canary.message:
        ended = canary.outcome.replace("_", " ")
        details = canary.message if canary.outcome == "failed" else f"The canary check ended as {ended}."
        failures.append(Failure(stage="checks", kind=FailureKind.TAMPERING, message=TAMPERED, details=details))
    if verdicts is None:
        failures.append(Failure(stage="checks", kind=FailureKind.CRASH, message=UNJUDGED))
    if ctx.assignment.training is not None and (hang := _training_hang(collected, checks)):
        limit = ctx.assignment.limits.check_seconds
        failures.append(Failure(stage="checks", kind=FailureKind.TIMEOUT, message=(
            f"{hang} did not return within {limit:g} s in the hidden checks, so the grader did not train the model.")))
    return failures


def _training_hang(collected: list[CollectedCheck], checks: dict[str, Check]) -> str | None:
    """A function the training calls that ran out of time in a check, if any."""
    hung = [name for item in collected if checks.get(item.nodeid, Check("not_run")).outcome == "timeout"
            for name in item.calls if name in TRAINING_CALLS]
    return hung[0] if hung else None
