"""Grades from the policy: each student's deadlines (course.toml and their extension) and late days, applied
whenever a grade is shown, so that editing course.toml or granting an extension changes every page and export.

Late days (`late_days` in course.toml) are a student's grace days for the term. They are allocated assignment by
assignment in the order of the student's due dates; each assignment gets the fewest late days that give its best
grade, from what earlier assignments left over. Only graded submissions use late days.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from grader.course import DAY, Course, OfferedAssignment
from grader.service.tables import Extension, Grading, GradingState, Submission


def result_grading(submission: Submission) -> Grading | None:
    """The newest finished grading of a submission."""
    return next((g for g in reversed(submission.gradings) if g.state is GradingState.DONE), None)


@dataclass(frozen=True)
class Policy:
    """One student's rules for one assignment: their due date and hard deadline, and the late days it uses."""

    offered: OfferedAssignment
    due: datetime
    hard_deadline: datetime
    extension: Extension | None = None
    late_days: int = 0

    @classmethod
    def of(cls, offered: OfferedAssignment, extension: Extension | None) -> Policy:
        """The course's deadlines, or the extension's; an extension without a hard deadline keeps the course's gap
        between due date and hard deadline."""
        if extension is None:
            return cls(offered, offered.due, offered.hard_deadline)
        hard = extension.hard_deadline or extension.due + (offered.hard_deadline - offered.due)
        return cls(offered, extension.due, hard, extension)

    def days_late(self, at: datetime) -> int:
        """Started days after the due date: 0 on time, 1 up to 24 hours late, and so on."""
        return max(0, math.ceil((at - self.due) / DAY))

    def late_days_used(self, at: datetime) -> int:
        """How many of a submission's late days the student's late days cover."""
        return min(self.late_days, self.days_late(at))

    def penalty(self, at: datetime) -> float:
        """The fraction of the score lost by a submission handed in at `at`."""
        return self.offered.penalty(self.days_late(at) - self.late_days_used(at))

    def closed(self, at: datetime) -> bool:
        """Whether uploads at `at` are refused: after the student's hard deadline."""
        return at > self.hard_deadline

    def final(self, submission: Submission) -> float | None:
        """The newest grading's score after the late penalty; None before the first grading."""
        result = result_grading(submission)
        if result is None or result.total is None:
            return None
        return result.total * (1 - self.penalty(submission.submitted_at))

    def counting(self, submissions: Sequence[Submission]) -> Submission | None:
        """The graded submission that is the grade: the latest, or the best after the penalty (latest on ties)."""
        graded = sorted((s for s in submissions if result_grading(s) is not None),
                        key=lambda s: (s.submitted_at, s.id))
        if not graded:
            return None
        if self.offered.counts == "latest":
            return graded[-1]
        return max(reversed(graded), key=lambda s: self.final(s) or 0.0)

    def grade(self, submissions: Sequence[Submission]) -> float:
        """The assignment's grade from these submissions (0 before any is graded)."""
        counting = self.counting(submissions)
        return (self.final(counting) or 0.0) if counting else 0.0


def _fewest_for_best(policy: Policy, submissions: Sequence[Submission], available: int) -> int:
    """The fewest late days (up to `available`) that give this assignment its best grade."""
    graded = [s for s in submissions if result_grading(s) is not None]
    most = min(available, max((policy.days_late(s.submitted_at) for s in graded), default=0))
    grades = [replace(policy, late_days=days).grade(graded) for days in range(most + 1)]
    return grades.index(max(grades))


def student_policies(course: Course, extensions: Iterable[Extension],
                     submissions: Iterable[Submission]) -> dict[str, Policy]:
    """One student's policy for every offered assignment, from their active extensions and submissions."""
    extended = {e.assignment_id: e for e in extensions if e.revoked_at is None}
    policies = {o.id: Policy.of(o, extended.get(o.id)) for o in course.assignments}
    if course.late_days == 0:
        return policies
    by_assignment: dict[str, list[Submission]] = {}
    for submission in submissions:
        by_assignment.setdefault(submission.assignment_id, []).append(submission)
    left = course.late_days
    for policy in sorted(policies.values(), key=lambda p: p.due):
        granted = _fewest_for_best(policy, by_assignment.get(policy.offered.id, []), left)
        policies[policy.offered.id] = replace(policy, late_days=granted)
        left -= granted
    return policies


def class_policies(db: Session, course: Course) -> dict[int, dict[str, Policy]]:
    """Every student's policies who has an extension or (with late days) a submission, by person id; a student
    missing here follows the course's deadlines (see `policies_for`)."""
    extensions: dict[int, list[Extension]] = {}
    for extension in db.scalars(select(Extension).where(Extension.revoked_at.is_(None))):
        extensions.setdefault(extension.person_id, []).append(extension)
    submissions: dict[int, list[Submission]] = {}
    if course.late_days:
        for submission in db.scalars(select(Submission).options(selectinload(Submission.gradings))):
            submissions.setdefault(submission.person_id, []).append(submission)
    people = extensions.keys() | submissions.keys()
    return {p: student_policies(course, extensions.get(p, []), submissions.get(p, [])) for p in people}


def policies_for(db: Session, course: Course, person_id: int) -> dict[str, Policy]:
    """One student's policy for every offered assignment."""
    extensions = db.scalars(select(Extension).where(Extension.person_id == person_id,
                                                    Extension.revoked_at.is_(None))).all()
    submissions: Sequence[Submission] = []
    if course.late_days:
        submissions = db.scalars(select(Submission).where(Submission.person_id == person_id)
                                 .options(selectinload(Submission.gradings))).all()
    return student_policies(course, extensions, submissions)


def late_days_left(course: Course, policies: dict[str, Policy]) -> int:
    """A student's late days not yet used by a graded submission."""
    return course.late_days - sum(policy.late_days for policy in policies.values())


def course_policies(course: Course) -> dict[str, Policy]:
    """The course's own deadlines, for a student with no extension and no late days used."""
    return student_policies(course, [], [])
