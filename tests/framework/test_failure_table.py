"""The failure table drives the pipeline: for every kind of failure, which later stages still run and what counts.

The expectations are written out here as the rubric says them, one per kind, independently of the table.
"""

from __future__ import annotations

import pytest

from grader.config import load_assignment
from grader.failures import STAGES, costs_checks, costs_metric, skipped_by, void_checks
from grader.models import CheckResult, Failure, FailureKind
from grader.scoring import POINTER, score

NOTHING_RUNS, NO_MODULE, NO_TRAINING, NO_EVALUATION = "nothing runs", "no module", "no training", "no evaluation"
# kind: (the stage it happens in, what it stops, whether the checks that ran still count)
RUBRIC = {
    FailureKind.INTAKE: ("intake", NOTHING_RUNS, True),
    FailureKind.MISSING_FILE: ("intake", NOTHING_RUNS, True),
    FailureKind.WORKER_LOST: ("cluster", NOTHING_RUNS, True),
    FailureKind.DATA_MISMATCH: ("cluster", NOTHING_RUNS, True),
    FailureKind.VERSION_MISMATCH: ("cluster", NOTHING_RUNS, True),
    FailureKind.NODE_ERROR: ("cluster", NOTHING_RUNS, True),
    FailureKind.SYNTAX_ERROR: ("import", NO_MODULE, True),
    FailureKind.IMPORT_ERROR: ("import", NO_MODULE, True),
    FailureKind.EARLY_EXIT: ("import", NO_MODULE, True),
    FailureKind.TIMEOUT: ("import", NO_MODULE, True),
    FailureKind.OUT_OF_MEMORY: ("import", NO_MODULE, True),
    FailureKind.CRASH: ("import", NO_MODULE, True),
    FailureKind.MISSING_NAME: ("import", NO_TRAINING, True),
    FailureKind.WRONG_KIND: ("import", NO_TRAINING, True),
    FailureKind.WRONG_SIGNATURE: ("import", NO_TRAINING, True),
    FailureKind.TAMPERING: ("checks", NO_TRAINING, False),
    FailureKind.NAN_LOSS: ("training", NO_EVALUATION, True),
    FailureKind.WRONG_OUTPUT: ("training", NO_EVALUATION, True),
    FailureKind.TOO_MANY_PARAMETERS: ("training", NO_EVALUATION, True),
    FailureKind.FORBIDDEN_LAYER: ("training", NO_EVALUATION, True),
    FailureKind.EXCEPTION: ("training", NO_EVALUATION, True),
    FailureKind.FILE_TOO_LARGE: ("training", NO_EVALUATION, True),
    FailureKind.CHANGED_WHILE_MEASURED: ("training", NO_EVALUATION, True),
}
STOPPED = {NOTHING_RUNS: set(STAGES), NO_MODULE: {"checks", "training"}, NO_TRAINING: {"training"},
           NO_EVALUATION: {"evaluation"}}
A2 = load_assignment("a2_ffn")


def test_the_rubric_covers_every_kind() -> None:
    assert set(RUBRIC) == set(FailureKind)


@pytest.mark.parametrize("kind", list(FailureKind))
def test_a_failure_stops_exactly_the_stages_its_kind_stops(kind: FailureKind) -> None:
    stage, stops, checks_count = RUBRIC[kind]
    failure = Failure(stage=stage, kind=kind, message=f"It went wrong ({kind}).")
    later = [s for s in STAGES if stage not in STAGES or STAGES.index(s) > STAGES.index(stage)]
    assert {s for s in later if skipped_by(s, [failure])} == STOPPED[stops] & set(later)
    assert not [s for s in STAGES if s not in later and skipped_by(s, [failure])], "an earlier stage is never stopped"
    passed = CheckResult(nodeid="t::a", group="architecture", outcome="passed", points=15.0, max_points=15.0)
    counted = void_checks([passed], [failure])[0].points
    assert counted == (15.0 if checks_count else 0.0)
    result = score(A2, [passed] if "checks" not in STOPPED[stops] else [], None, [failure])
    metric = result.items[-1]
    explains_checks = costs_checks([failure]) is failure  # then it explains the groups that earned nothing too
    said_once = POINTER if explains_checks else f"Not earned: It went wrong ({kind})."
    assert metric.points == 0 and metric.reason == said_once
    assert explains_checks == ("checks" in STOPPED[stops] or not checks_count or stage == "import")
    assert costs_metric([failure]) is failure
