"""Scoring: the metric curve, full marks, and a reason for every line of the score."""

from __future__ import annotations

import pytest

from grader.config import Assignment, assignment_ids, load_assignment
from grader.models import CheckResult, Failure, FailureKind, Metrics, Score
from grader.scoring import POINTER, metric_credit, score

WITH_METRIC = [i for i in assignment_ids() if load_assignment(i).metric is not None]


def metrics(accuracy: float, assignment: Assignment | None = None) -> Metrics:
    """Metrics of `accuracy`, or for a reconstruction assignment of that mean squared error."""
    if assignment is not None and assignment.metric is not None and assignment.metric.task == "reconstruction":
        return Metrics(task="reconstruction", name="mean squared error", higher_is_better=False, value=accuracy,
                       perturbed_value=accuracy, perturbation="hflip", perturbation_gap=0.0, samples=1000)
    return Metrics(value=accuracy, per_class_accuracy={"airplane": accuracy, "bird": accuracy},
                   confusion=[[1, 0], [0, 1]], perturbed_value=accuracy, perturbation="hflip",
                   perturbation_gap=0.0, samples=2000)


def beyond(assignment: Assignment, end: float, by: float) -> float:
    """`by` past `end` in the direction of a worse metric (lower accuracy, higher error)."""
    return end + by if assignment.metric is not None and assignment.metric.task == "reconstruction" else end - by


def checks(assignment: Assignment, passed: int = 2, failed: int = 0) -> list[CheckResult]:
    """`passed + failed` checks per group, sharing the group's points equally."""
    results = []
    for group in assignment.checks:
        share = group.points / (passed + failed)
        results += [CheckResult(nodeid=f"test_{group.name}_{i}", group=group.name, outcome="passed",
                                points=share, max_points=share) for i in range(passed)]
        results += [CheckResult(nodeid=f"test_{group.name}_bad_{i}", group=group.name, outcome="failed",
                                points=0.0, max_points=share, message="AssertionError: expected 2 logits")
                    for i in range(failed)]
    return results


def assert_reasons_are_sentences(result: Score) -> None:
    for item in result.items:
        assert item.reason and (item.reason[0].isupper() or item.reason[0].isdigit()), item
        assert item.reason.endswith("."), item
        assert "\n" not in item.reason


@pytest.mark.parametrize("assignment_id", WITH_METRIC)
def test_metric_credit_curve(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    metric = assignment.metric
    low, high = metric.zero_credit_at, metric.full_credit_at
    assert metric_credit(metric, low) == 0.0 and metric_credit(metric, beyond(assignment, low, 0.2)) == 0.0
    assert metric_credit(metric, high) == pytest.approx(1.0)
    assert metric_credit(metric, beyond(assignment, high, -0.002)) == 1.0
    assert metric_credit(metric, (low + high) / 2) == pytest.approx(0.5)


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_everything_passed_earns_the_total(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    accuracy = metrics(assignment.metric.full_credit_at, assignment) if assignment.metric else None
    result = score(assignment, checks(assignment), accuracy, [])
    assert result.total == assignment.total_points == result.max_total
    assert [item.points for item in result.items] == [item.max_points for item in result.items]
    assert_reasons_are_sentences(result)


@pytest.mark.parametrize("assignment_id", WITH_METRIC)
def test_partial_results_have_reasons(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    metric = assignment.metric
    result = score(assignment, checks(assignment, passed=1, failed=1),
                   metrics((metric.zero_credit_at + metric.full_credit_at) / 2, assignment), [])
    groups = sum(group.points for group in assignment.checks)
    earned = 0 if metric.requires else metric.points / 2  # a required group failed half its checks
    assert result.total == pytest.approx(groups / 2 + earned, abs=0.02)
    assert all("1 of 2" in item.reason for item in result.items[:-1])
    assert "expected 2 logits" in result.items[0].reason
    assert ("Not earned: the checks" if metric.requires else "50%") in result.items[-1].reason
    assert_reasons_are_sentences(result)


@pytest.mark.parametrize("outcome", ["failed", "timeout", "crashed"])
def test_a_failed_check_without_a_message_still_gives_a_sentence(outcome: str) -> None:
    assignment = load_assignment("a2_ffn")
    group = assignment.checks[0]
    bad = CheckResult(nodeid="test_x", group=group.name, outcome=outcome, points=0.0, max_points=group.points)
    result = score(assignment, [bad], metrics(0.0), [])
    assert outcome in result.items[0].reason
    assert_reasons_are_sentences(result)


def test_below_zero_credit_earns_no_metric_points() -> None:
    assignment = load_assignment("a3_cnn")
    result = score(assignment, checks(assignment), metrics(assignment.metric.zero_credit_at - 0.01), [])
    assert result.items[-1].points == 0 and "no credit" in result.items[-1].reason
    assert result.total == assignment.total_points - assignment.metric.points


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_import_failure_explains_every_line(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    failure = Failure(stage="import", kind=FailureKind.SYNTAX_ERROR,
                      message="ffn.py has a syntax error on line 3.")
    result = score(assignment, [], None, [failure])
    assert result.total == 0 and result.max_total == assignment.total_points
    assert len(result.items) == len(assignment.checks) + (assignment.metric is not None)
    assert [item.reason for item in result.items] == [POINTER] * len(result.items)  # the sentence is said once
    assert failure.message in result.summary


@pytest.mark.parametrize("assignment_id", WITH_METRIC)
def test_a_low_accuracy_points_at_the_failed_training_checks(assignment_id: str) -> None:
    assignment = load_assignment(assignment_id)
    training = assignment.group("training")
    low = metrics(beyond(assignment, assignment.metric.zero_credit_at, 0.2), assignment)
    results = [c.model_copy(update={"outcome": "failed", "points": 0.0}) if c.nodeid == "test_training_1" else c
               for c in checks(assignment)]
    reason = score(assignment, results, low, []).items[-1].reason
    poor = "high mean squared error" if assignment.metric.task == "reconstruction" else "low accuracy"
    assert reason.endswith(f"The checks “{training.title}” failed (see above), which usually explains a {poor}: "
                           "fix them first.")
    assert "failed" not in score(assignment, checks(assignment), low, []).items[-1].reason
    full = metrics(assignment.metric.full_credit_at, assignment)
    assert "failed" not in score(assignment, results, full, []).items[-1].reason



def test_a_metric_that_requires_a_check_group_earns_nothing_without_it() -> None:
    """a4_autoencoder's error counts only when its architecture checks (the bottleneck) pass."""
    a4 = load_assignment("a4_autoencoder")
    assert a4.metric is not None and a4.metric.requires == ["architecture"]
    perfect = Metrics(task="reconstruction", name="mean squared error", higher_is_better=False, value=0.0,
                      perturbed_value=0.0, perturbation="hflip", perturbation_gap=0.0, samples=1000)
    passing = checks(a4)
    assert score(a4, passing, perfect, []).total == a4.total_points
    copying = [c.model_copy(update={"points": 0.0, "outcome": "failed"}) if c.nodeid == "test_architecture_0" else c
               for c in passing]
    metric = score(a4, copying, perfect, []).items[-1]
    assert metric.name == "mse" and metric.points == 0
    assert metric.reason.startswith("Not earned: the checks “An encoder to a bottleneck")


def test_an_error_earns_credit_the_other_way() -> None:
    a4 = load_assignment("a4_autoencoder")
    metric = a4.metric
    middle = (metric.full_credit_at + metric.zero_credit_at) / 2
    assert metric_credit(metric, metric.full_credit_at) == 1 and metric_credit(metric, metric.zero_credit_at) == 0
    assert metric_credit(metric, middle) == pytest.approx(0.5) and metric_credit(metric, 0.0) == 1
