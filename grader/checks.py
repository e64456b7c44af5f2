"""Checks stage: the assignment's hidden pytest checks, run in the sandbox against the submission.

Outcomes come from the grader's pytest plugin as JSON lines, never from console text. A check
that kills the interpreter is recorded as crashed and pytest is started again for the checks
that have not run yet, so one crash costs one check. A canary check that must fail proves
the run was not tampered with.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.context import GradingContext
from grader.harness.submission import read_events
from grader.models import CheckResult, Failure, FailureKind
from grader.paths import PACKAGE_DIR, PROJECT_ROOT
from grader.sandbox import Mount, SandboxResult, python_stage, run

RESULTS_FILE = "results.jsonl"
CANARY = PACKAGE_DIR / "harness" / "canary_check.py"
CANARY_NODEID = "grader/harness/canary_check.py::test_canary"
DATA_MOUNT = Path("/data/cifar10")
TAMPERED = ("The hidden checks reported an impossible result, so the test run was tampered with; "
            "the checks earn no points.")


@dataclass
class ChecksOutcome:
    """What the checks stage hands on: one result per hidden check, and a stage failure if any."""

    results: list[CheckResult] = field(default_factory=list)
    failure: Failure | None = None


@dataclass
class _Run:
    """What one pytest process reported."""

    collected: list[dict] | None = None
    outcomes: dict[str, dict] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    finished: bool = False


def run_checks(ctx: GradingContext) -> ChecksOutcome:
    """Run every hidden check, restarting pytest after a crash, within the stage's total time."""
    nonce = secrets.token_hex(8)
    deadline = time.monotonic() + ctx.assignment.limits.checks_total_seconds
    collected: list[dict] | None = None
    outcomes: dict[str, dict] = {}
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        report, result = _run_pytest(ctx, nonce, sorted(outcomes), deadline - time.monotonic(), attempt)
        collected = collected or report.collected
        outcomes |= report.outcomes
        if report.finished or collected is None:
            break
        crashed = next((n for n in reversed(report.started) if n not in report.outcomes), None)
        if crashed is None:
            break
        outcomes[crashed] = _crash_record(result)
    if collected is None:
        return ChecksOutcome(failure=Failure(stage="checks", kind=FailureKind.CRASH,
                                             message="The hidden checks could not even be collected.",
                                             details=result.output[-4000:]))
    return _score_outcomes(ctx, collected, outcomes, nonce)


def _run_pytest(ctx: GradingContext, nonce: str, done: list[str], seconds: float,
                attempt: int) -> tuple[_Run, SandboxResult]:
    workdir = ctx.stage_dir(f"checks-{attempt}")
    assignment = ctx.assignment
    mounts = [Mount(assignment.checks_dir, assignment.checks_dir)]
    args = [
        str(assignment.checks_dir), str(CANARY),
        "-p", "grader.pytest_plugin", "-p", "pytest_timeout", "-p", "no:cacheprovider",
        "--noconftest", "-c", str(PACKAGE_DIR / "harness" / "pytest.ini"), "--rootdir", str(PROJECT_ROOT),
        "--submission", "submission", "--results", RESULTS_FILE,
        "--timeout", f"{assignment.limits.check_seconds:g}", "-q", "--no-header", "-p", "no:warnings",
    ]
    if assignment.checks_read_data and ctx.data_root is not None:
        mount = Mount(ctx.data_root, DATA_MOUNT)
        mounts.append(mount)
        args += ["--data-root", str(mount.inside)]
    for nodeid in done:
        args += ["--deselect", nodeid]
    env = {"GRADER_CANARY": nonce, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    stage = python_stage("grader.harness.checks", args, workdir, ctx.limits(seconds), mounts=mounts, env=env)
    result = run(stage)
    return _read_results(workdir / RESULTS_FILE), result


def _read_results(path: Path) -> _Run:
    report = _Run()
    for record in read_events(path):
        try:
            _apply_event(report, record)
        except (KeyError, TypeError, AttributeError):
            continue  # a line the submission forged; the canary judges the rest
    return report


def _apply_event(report: _Run, record: dict) -> None:
    event = record["event"]
    if event == "collected":
        report.collected = [{"nodeid": str(i["nodeid"]), "group": i.get("group")} for i in record["items"]]
    elif event == "start":
        report.started.append(str(record["nodeid"]))
    elif event == "outcome" and isinstance(record["outcome"], str):
        _merge_outcome(report.outcomes, record)
    elif event == "finish":
        report.finished = True


def _merge_outcome(outcomes: dict[str, dict], record: dict) -> None:
    """Keep the first failure of a check (setup, call or teardown), else its call outcome."""
    previous = outcomes.get(record["nodeid"])
    if previous is None or previous["outcome"] == "passed":
        outcomes[record["nodeid"]] = record


def _crash_record(result: SandboxResult) -> dict:
    if result.timed_out:
        message, outcome = "The check ran out of time.", "timeout"
    elif result.out_of_memory:
        message, outcome = f"The check used more than {result.limit_memory_mb} MB of memory.", "crashed"
    elif result.killed_by:
        message, outcome = f"The check crashed the Python interpreter ({result.killed_by}).", "crashed"
    else:
        message, outcome = f"The check ended the test process (exit code {result.returncode}).", "crashed"
    return {"outcome": outcome, "message": message, "details": result.output[-4000:], "seconds": result.seconds}


def _score_outcomes(ctx: GradingContext, collected: list[dict], outcomes: dict[str, dict],
                    nonce: str) -> ChecksOutcome:
    canary = outcomes.get(CANARY_NODEID, {})
    tampered = canary.get("outcome") != "failed" or nonce not in canary.get("message", "")
    checks = [item for item in collected if item["nodeid"] != CANARY_NODEID]
    counts = {g.name: sum(1 for c in checks if c["group"] == g.name) for g in ctx.assignment.checks}
    results = []
    for item in checks:
        group = item["group"]
        if group not in counts:
            continue  # a check without a known group earns nothing; the framework tests forbid it
        max_points = ctx.assignment.group(group).points / counts[group]
        record = outcomes.get(item["nodeid"], {"outcome": "not_run", "message": "The check did not run."})
        outcome = _outcome_name(record)
        results.append(CheckResult(
            nodeid=item["nodeid"], group=group, outcome=outcome, max_points=max_points,
            points=max_points if outcome == "passed" and not tampered else 0.0,
            message=record.get("message") or "", details=record.get("details") or "",
            seconds=record.get("seconds", 0.0),
        ))
    failure = None
    if tampered:
        details = canary.get("message") or f"The canary check ended as {canary.get('outcome', 'not run')}."
        failure = Failure(stage="checks", kind=FailureKind.TAMPERING, message=TAMPERED, details=details)
    return ChecksOutcome(results=results, failure=failure)


def _outcome_name(record: dict) -> str:
    outcome = record["outcome"]
    if outcome in ("timeout", "crashed", "not_run"):
        return outcome
    if outcome == "failed" and "Timeout" in (record.get("message") or ""):
        return "timeout"
    if outcome == "failed" and record.get("when") != "call":
        return "error"
    return {"passed": "passed", "skipped": "not_run"}.get(outcome, "failed")
