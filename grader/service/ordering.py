"""The fair queue: which queued grading the service dispatches next, as a pure function of the queued rows.

Student uploads go first, round robin among students (everyone's first waiting upload, then everyone's second, ...,
each round in order of request); then single regrades a TA asked for; then regrades of a whole assignment; last,
uploads superseded by a newer upload of the same student and assignment, which are still graded, when nothing
else waits. A course may choose plain first-come order instead (`[queue] order = "first_come"` in course.toml):
every grading in order of request, nothing superseded.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import timedelta
from enum import IntEnum

from pydantic import BaseModel

from grader.course import QueueOrder


class Reason(IntEnum):
    """Why a grading was queued, in dispatch priority (lower first)."""

    UPLOAD = 0
    REGRADE = 1
    REGRADE_ALL = 2


class QueuedGrading(BaseModel):
    """What the ordering needs of one queued, not yet dispatched grading."""

    grading_id: int
    submission_id: int
    person_id: int
    assignment_id: str
    reason: Reason
    newest_submission_id: int  # the student's newest submission of the same assignment


def superseded_by(row: QueuedGrading, order: QueueOrder) -> int | None:
    """The newer submission that supersedes a queued upload, or None (regrades, and anything in first-come order,
    are never superseded)."""
    newer = order == "fair" and row.reason is Reason.UPLOAD and row.newest_submission_id > row.submission_id
    return row.newest_submission_id if newer else None


def dispatch_order(queued: Sequence[QueuedGrading], order: QueueOrder) -> list[QueuedGrading]:
    """The queued gradings in the order they are dispatched: the fair queue's, or by request in first-come order."""
    by_request = sorted(queued, key=lambda r: r.grading_id)
    if order == "first_come":
        return by_request
    turns: dict[int, int] = {}
    keyed = []
    for row in by_request:
        lowest = superseded_by(row, order) is not None
        turn = 0
        if row.reason is Reason.UPLOAD and not lowest:
            turn = turns.get(row.person_id, 0)
            turns[row.person_id] = turn + 1
        rank = len(Reason) if lowest else row.reason
        keyed.append(((rank, turn, row.grading_id), row))
    return [row for _, row in sorted(keyed, key=lambda pair: pair[0])]


def estimate(durations: Sequence[timedelta], place: int, workers: int) -> timedelta | None:
    """How long until a grading at `place` is finished: the (low) median measured duration times the gradings ahead
    of it and itself, shared among the workers; None before any measurement."""
    if not durations or workers < 1:
        return None
    rounds = -(-place // workers)  # ceil: the gradings ahead of it and itself, `workers` at a time
    return statistics.median_low(durations) * rounds
