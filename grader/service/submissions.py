"""Taking an upload in, and asking for regrades: the course's rules first, then the file (durably), then the rows.

An upload is acknowledged only after its file is fsynced and its submission and queued grading are committed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.config import load_assignment
from grader.course import DAY, Course, OfferedAssignment
from grader.service.ordering import Reason
from grader.service.policy import policies_for
from grader.service.settings import ServiceSettings
from grader.service.storage import UploadRefused, check_format, store, stored_name, upload_suffix
from grader.service.tables import Grading, GradingState, Person, Submission, utcnow

DISPLAY_NAME_CHARS = 255
_quota_lock = threading.Lock()  # one student's concurrent uploads cannot both pass the daily limit


def display_name(filename: str) -> str:
    """The upload's own name for showing it back: its last path part, printable, bounded; never a path."""
    last = re.split(r"[\\/]", filename)[-1]
    printable = "".join(ch for ch in last if ch.isprintable())
    return printable[-DISPLAY_NAME_CHARS:] or "upload"


def accept_upload(db: Session, settings: ServiceSettings, course: Course, person: Person,
                  offered: OfferedAssignment, filename: str, chunks: Iterable[bytes]) -> Submission:
    """Store an upload and queue its grading, or raise UploadRefused with the sentence the student reads."""
    now = utcnow()
    policy = policies_for(db, course, person.id)[offered.id]
    if policy.closed(now):
        title = load_assignment(offered.id).title
        raise UploadRefused(f"The hard deadline of {title} was {course.show_time(policy.hard_deadline)}; "
                            "uploads are closed.", 403)
    _check_quota(db, course, person, offered, now)
    suffix = upload_suffix(filename)
    required = load_assignment(offered.id).submission.files[0]
    stored = store(chunks, settings.uploads_dir, suffix, stored_name(suffix, required), course.max_upload_bytes)
    try:
        check_format(stored)
    except UploadRefused:
        stored.path.unlink(missing_ok=True)  # content decides the format, so no accepted upload shares this file
        raise
    with _quota_lock:
        db.scalar(select(Person).where(Person.id == person.id).with_for_update())  # the same across processes
        _check_quota(db, course, person, offered, now)
        submission = Submission(person_id=person.id, assignment_id=offered.id, filename=display_name(filename),
                                sha256=stored.sha256, stored_name=stored.name, size=stored.size, submitted_at=now)
        db.add(submission)
        db.add(Grading(submission=submission, state=GradingState.QUEUED, requested_at=now))
        db.commit()
    return submission


def _check_quota(db: Session, course: Course, person: Person, offered: OfferedAssignment, now: datetime) -> None:
    since = now - DAY
    recent = db.execute(select(func.count(), func.min(Submission.submitted_at)).where(
        Submission.person_id == person.id, Submission.assignment_id == offered.id,
        Submission.submitted_at > since)).one()
    count, oldest = recent
    if count >= offered.submissions_per_day:
        raise UploadRefused(
            f"You have handed in {count} submissions of {offered.id} in the last 24 hours, the course's limit; "
            f"you can hand in again after {course.show_time(oldest + DAY)}.", 429)


def request_regrade(db: Session, submissions: Iterable[Submission], reason: Reason = Reason.REGRADE) -> int:
    """Queue one more grading of each submission not already waiting or being graded; returns how many.

    A whole assignment's regrade (Reason.REGRADE_ALL) waits behind every student upload and single regrade."""
    queued = 0
    for submission in submissions:
        if submission.gradings and submission.gradings[-1].state is not GradingState.DONE:
            continue
        db.add(Grading(submission=submission, state=GradingState.QUEUED, requested_at=utcnow(), reason=reason))
        queued += 1
    db.commit()
    return queued
