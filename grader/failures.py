"""What a failure does to the rest of the grading: which later stages it skips and whether the checks still count.

One table, keyed by FailureKind; the pipeline asks it before each stage and scoring asks it for reasons.
A stage whose input is missing (no trained checkpoint, say) does not run either; the table is about
failures that stop a stage even though its input exists.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from grader.models import CheckResult, Failure, FailureKind

StageName = Literal["import", "checks", "training", "evaluation"]
STAGES: tuple[StageName, ...] = ("import", "checks", "training", "evaluation")
ALL_STAGES = frozenset(STAGES)
UNUSABLE_MODULE: frozenset[StageName] = frozenset({"checks", "training"})


class Consequence(NamedTuple):
    skips: frozenset[StageName]
    voids_checks: bool = False


CONSEQUENCES: dict[FailureKind, Consequence] = {
    # Nothing to import, or the grader could not grade here: nothing runs.
    FailureKind.INTAKE: Consequence(ALL_STAGES),
    FailureKind.MISSING_FILE: Consequence(ALL_STAGES),
    FailureKind.WORKER_LOST: Consequence(ALL_STAGES),
    FailureKind.DATA_MISMATCH: Consequence(ALL_STAGES),
    FailureKind.VERSION_MISMATCH: Consequence(ALL_STAGES),
    FailureKind.NODE_ERROR: Consequence(ALL_STAGES),
    # The module cannot be used at all (at import), or the stage died: the later stages that run it do not run.
    FailureKind.SYNTAX_ERROR: Consequence(UNUSABLE_MODULE),
    FailureKind.IMPORT_ERROR: Consequence(UNUSABLE_MODULE),
    FailureKind.EARLY_EXIT: Consequence(UNUSABLE_MODULE),
    FailureKind.TIMEOUT: Consequence(UNUSABLE_MODULE),
    FailureKind.OUT_OF_MEMORY: Consequence(UNUSABLE_MODULE),
    FailureKind.CRASH: Consequence(UNUSABLE_MODULE),
    # An incomplete interface: the checks that can run still count, the grader does not train.
    FailureKind.MISSING_NAME: Consequence(frozenset({"training"})),
    FailureKind.WRONG_KIND: Consequence(frozenset({"training"})),
    FailureKind.WRONG_SIGNATURE: Consequence(frozenset({"training"})),
    # A tampered test run: no check counts and the grader does not train.
    FailureKind.TAMPERING: Consequence(frozenset({"training"}), voids_checks=True),
    # Training went wrong: the saved model is not evaluated.
    FailureKind.NAN_LOSS: Consequence(frozenset({"evaluation"})),
    FailureKind.WRONG_OUTPUT: Consequence(frozenset({"evaluation"})),
    FailureKind.TOO_MANY_PARAMETERS: Consequence(frozenset({"evaluation"})),
    FailureKind.FORBIDDEN_LAYER: Consequence(frozenset({"evaluation"})),
    FailureKind.EXCEPTION: Consequence(frozenset({"evaluation"})),
    FailureKind.FILE_TOO_LARGE: Consequence(frozenset({"evaluation"})),
    FailureKind.CHANGED_WHILE_MEASURED: Consequence(frozenset({"evaluation"})),
}


def _order(stage: str) -> int:
    """Stages outside the pipeline (intake, a container, the cluster) come before all of its own."""
    return STAGES.index(stage) if stage in STAGES else -1


def skipped_by(stage: StageName, failures: list[Failure]) -> Failure | None:
    """The first earlier failure that keeps `stage` from running, if any."""
    return next((f for f in failures if _order(f.stage) < _order(stage) and stage in CONSEQUENCES[f.kind].skips),
                None)


def voiding(failures: list[Failure]) -> Failure | None:
    """The failure that makes every check count for nothing, if any."""
    return next((f for f in failures if CONSEQUENCES[f.kind].voids_checks), None)


def void_checks(checks: list[CheckResult], failures: list[Failure]) -> list[CheckResult]:
    """The checks as they count: no points at all after a voiding failure."""
    if voiding(failures) is None:
        return checks
    return [check.model_copy(update={"points": 0.0}) for check in checks]


def costs_checks(failures: list[Failure]) -> Failure | None:
    """The failure that explains check groups that earned nothing: one that skipped or voided the checks, or
    an incomplete interface (the checks of a missing function cannot pass)."""
    return voiding(failures) or skipped_by("checks", failures) or next((f for f in failures if f.stage == "import"),
                                                                        None)


def costs_metric(failures: list[Failure]) -> Failure | None:
    """The failure that explains a metric that was not earned: one that skipped training or evaluation or
    happened there."""
    return next((f for f in failures if f.stage in ("training", "evaluation")
                 or CONSEQUENCES[f.kind].skips & {"training", "evaluation"}), None)
