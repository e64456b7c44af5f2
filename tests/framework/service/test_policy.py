"""How late days are allocated: in the order of the student's due dates, the fewest that give each assignment its
best grade; and how an extension sets a student's deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grader.course import Course, OfferedAssignment
from grader.service.policy import Policy, late_days_left, student_policies
from grader.service.tables import Extension, Grading, GradingState, Submission

DUE = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)


def offered(assignment_id: str, due: datetime, penalty: float = 0.1, counts: str = "best") -> OfferedAssignment:
    return OfferedAssignment(id=assignment_id, due=due, hard_deadline=due + timedelta(days=5),
                             late_penalty_per_day=penalty, submissions_per_day=5, counts=counts, leaderboard=False)


def course(late_days: int, *assignments: OfferedAssignment) -> Course:
    return Course(name="c", timezone="UTC", max_upload_mb=1, late_days=late_days, assignments=list(assignments))


def graded(assignment_id: str, at: datetime, total: float | None) -> Submission:
    """A submission with one grading: finished with `total`, or still queued when None."""
    submission = Submission(assignment_id=assignment_id, submitted_at=at, filename="x.py")
    state = GradingState.QUEUED if total is None else GradingState.DONE
    submission.gradings = [Grading(state=state, total=total, max_total=100.0)]
    return submission


def test_late_days_go_in_due_order_and_run_out() -> None:
    a1, a2 = offered("a1_dataset", DUE), offered("a2_ffn", DUE + timedelta(days=7))
    the_course = course(3, a2, a1)  # listed out of order: allocation follows the due dates
    submissions = [graded("a2_ffn", a2.due + timedelta(days=1, hours=1), 100.0),
                   graded("a1_dataset", a1.due + timedelta(days=1, hours=1), 100.0)]
    policies = student_policies(the_course, [], submissions)
    assert (policies["a1_dataset"].late_days, policies["a2_ffn"].late_days) == (2, 1)
    assert policies["a1_dataset"].final(submissions[1]) == 100.0
    assert policies["a2_ffn"].final(submissions[0]) == 90.0  # one uncovered day at 10%
    assert late_days_left(the_course, policies) == 0


def test_the_fewest_late_days_that_give_the_best_grade() -> None:
    a1 = offered("a1_dataset", DUE)
    on_time, late_same = graded("a1_dataset", DUE, 100.0), graded("a1_dataset", DUE + timedelta(days=1), 100.0)
    assert student_policies(course(2, a1), [], [on_time, late_same])["a1_dataset"].late_days == 0
    weak, late_better = graded("a1_dataset", DUE, 50.0), graded("a1_dataset", DUE + timedelta(hours=30), 100.0)
    policy = student_policies(course(5, a1), [], [weak, late_better])["a1_dataset"]
    assert policy.late_days == 2 and policy.counting([weak, late_better]) is late_better
    queued = graded("a1_dataset", DUE + timedelta(days=3), None)
    assert student_policies(course(5, a1), [], [queued])["a1_dataset"].late_days == 0  # only graded ones use days


def test_an_extension_sets_the_deadlines_and_keeps_the_gap() -> None:
    a1 = offered("a1_dataset", DUE)
    extension = Extension(assignment_id="a1_dataset", due=DUE + timedelta(days=2), hard_deadline=None)
    policy = student_policies(course(0, a1), [extension], [])["a1_dataset"]
    assert (policy.due, policy.hard_deadline) == (DUE + timedelta(days=2), DUE + timedelta(days=7))
    assert policy.days_late(DUE + timedelta(days=2, hours=1)) == 1
    revoked = Extension(assignment_id="a1_dataset", due=DUE + timedelta(days=2), revoked_at=DUE)
    assert student_policies(course(0, a1), [revoked], [])["a1_dataset"].due == DUE
    assert Policy.of(a1, None).penalty(DUE + timedelta(days=20)) == 1.0  # never more than the whole score
