"""Scoring: points per check group plus metric credit from the assignment's curve, each with a reason."""

from __future__ import annotations

from grader.config import Assignment, CheckGroup, Metric
from grader.failures import costs_checks, costs_metric, void_checks
from grader.models import CheckResult, Failure, Finding, Metrics, Score, ScoreItem
from grader.tasks import TASK_TYPES

POINTER = "Not earned: see “What went wrong”."  # for rows that a failure said once in that section explains


def score(assignment: Assignment, checks: list[CheckResult], metrics: Metrics | None,
          failures: list[Failure], integrity: list[Finding] | None = None) -> Score:
    """The score breakdown; `failures` explain parts that earned nothing because a stage did not run, and
    `integrity` findings whose action is no_credit take the metric's points."""
    checks = void_checks(checks, failures)
    blocking = costs_checks(failures)
    items = [_group_item(group, [c for c in checks if c.group == group.name], blocking) for group in assignment.checks]
    if assignment.metric is not None:
        metric = _metric_item(assignment.metric, metrics, costs_metric(failures))
        metric = _uncredited(metric, integrity or []) or _unmet(metric, assignment, checks) or \
            _explained(metric, assignment, checks)
        items.append(metric)
    items = _pointing(items, failures)
    total = round(sum(item.points for item in items), 2)
    max_total = assignment.total_points
    return Score(total=total, max_total=max_total, items=items, summary=_summary(total, max_total, failures))


def metric_credit(metric: Metric, value: float) -> float:
    """The fraction of the metric's points earned: linear between the zero and full credit values (for an error,
    whose full credit lies below its zero credit, the line falls)."""
    fraction = (value - metric.zero_credit_at) / (metric.full_credit_at - metric.zero_credit_at)
    return min(max(fraction, 0.0), 1.0)


def _group_item(group: CheckGroup, results: list[CheckResult], blocking: Failure | None) -> ScoreItem:
    points = round(sum(r.points for r in results), 2)
    passed = sum(1 for r in results if r.points > 0)
    if blocking is not None and passed == 0:
        reason = f"Not earned: {blocking.message}"
    elif not results:
        reason = "The checks did not run."
    elif passed == len(results):
        reason = {1: "The check passed.", 2: "Both checks passed."}.get(len(results),
                                                                        f"All {len(results)} checks passed.")
    else:
        first = next(r for r in results if r.points == 0)
        why = first.message or f"A check ended as {first.outcome.replace('_', ' ')}"
        reason = f"{passed} of {len(results)} checks passed. {why}" + ("" if why.endswith((".", "!", "?")) else ".")
    return ScoreItem(name=group.name, title=group.title, points=points, max_points=group.points, reason=reason)


def _metric_item(metric: Metric, metrics: Metrics | None, failure: Failure | None) -> ScoreItem:
    task = TASK_TYPES[metric.task]
    key, name = task.key, task.metric
    title = f"{name[:1].upper()}{name[1:]} on the hidden test images of the model the grader trained"
    if metrics is None:
        why = failure.message if failure else "the model was not evaluated."
        return ScoreItem(name=key, title=title, points=0.0, max_points=metric.points,
                         reason=f"Not earned: {why}")
    fraction = metric_credit(metric, metrics.value)
    value = f"The {name} {metrics.value:.4f}"
    full, zero = (format(end, task.threshold_format) for end in (metric.full_credit_at, metric.zero_credit_at))
    if fraction >= 1.0:
        reason = f"{value} reaches {full}: full credit."
    elif fraction <= 0.0:
        reason = f"{value} is {'below' if metrics.higher_is_better else 'above'} {zero}: no credit."
    else:
        reason = f"{value} lies between {zero} and {full}: {fraction:.0%} of the points."
    return ScoreItem(name=key, title=title, points=round(metric.points * fraction, 2),
                     max_points=metric.points, reason=reason)


def _uncredited(item: ScoreItem, integrity: list[Finding]) -> ScoreItem | None:
    """The metric with no points, when the grader's measures say its accuracy does not come from its training."""
    why = [finding.message for finding in integrity if finding.action == "no_credit"]
    if not why:
        return None
    return item.model_copy(update={"points": 0.0, "reason": f"Not earned: {' '.join(why)}"})


def _unmet(item: ScoreItem, assignment: Assignment, checks: list[CheckResult]) -> ScoreItem | None:
    """The metric with no points, when a check group it `requires` did not pass in full."""
    required = assignment.metric.requires if assignment.metric else []
    failed = [group for group in assignment.checks if group.name in required
              and any(c.group == group.name and c.points < c.max_points for c in checks)]
    if not failed or item.points == 0:
        return None
    names = " and ".join(f"“{group.title}”" for group in failed)
    return item.model_copy(update={"points": 0.0, "reason": f"Not earned: the checks {names} failed (see above), "
                                                            "and the metric counts only for a model that passes them."})


def _explained(item: ScoreItem, assignment: Assignment, checks: list[CheckResult]) -> ScoreItem:
    """A metric short of full credit names the failed check group that usually explains it (`explained_by`)."""
    if assignment.metric is None or item.points >= item.max_points or item.reason.startswith("Not earned"):
        return item
    failed = [group for group in assignment.checks if group.name in assignment.metric.explained_by
              and any(c.group == group.name and c.points < c.max_points for c in checks)]
    if not failed:
        return item
    names = " and ".join(f"“{group.title}”" for group in failed)
    task = TASK_TYPES[assignment.metric.task]
    poor = f"{'low' if task.higher_is_better else 'high'} {task.metric}"
    return item.model_copy(update={"reason": f"{item.reason} The checks {names} failed (see above), "
                                             f"which usually explains a {poor}: fix them first."})


def _pointing(items: list[ScoreItem], failures: list[Failure]) -> list[ScoreItem]:
    """Rows that one failure explains point to it, said once under “What went wrong”, instead of each repeating it."""
    reasons = [f"Not earned: {failure.message}" for failure in failures]
    repeated = {reason for reason in reasons if sum(item.reason == reason for item in items) > 1}
    return [item.model_copy(update={"reason": POINTER}) if item.reason in repeated else item for item in items]


def _summary(total: float, max_total: float, failures: list[Failure]) -> str:
    head = f"{total:g} of {max_total:g} points."
    return f"{head} {failures[0].message}" if failures else head
