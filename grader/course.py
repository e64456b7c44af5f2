"""Course configuration: `course.toml`, the assignments a course offers and the rules its submissions follow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, field_validator, model_validator

from grader.config import FrozenStrictModel, assignment_ids, load_toml_model
from grader.errors import GraderError
from grader.paths import course_root

COURSE_FILE = "course.toml"
DAY = timedelta(days=1)
QueueOrder = Literal["fair", "first_come"]


class OfferedAssignment(FrozenStrictModel):
    """One assignment as the course offers it: deadlines, late policy and submission limits."""

    id: str
    due: AwareDatetime
    hard_deadline: AwareDatetime = Field(description="uploads after this are refused")
    late_penalty_per_day: float = Field(ge=0, le=1, description="fraction of the score lost per started day late")
    submissions_per_day: int = Field(gt=0, description="graded submissions per student in any 24 hours")
    counts: Literal["latest", "best"] = Field(description="which graded submission is the grade")
    leaderboard: bool
    release: Literal["immediately", "after_due", "when_published"] = Field(
        "immediately", description="when students see scores and reports: at once, after their due date, or once "
                                   "a TA publishes them")

    @field_validator("id")
    @classmethod
    def _shipped(cls, value: str) -> str:
        if value not in assignment_ids():
            raise ValueError(f"unknown assignment {value!r} in the course root {course_root()}; known assignments: "
                             f"{', '.join(assignment_ids())}")
        return value

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> OfferedAssignment:
        if self.hard_deadline < self.due:
            raise ValueError("hard_deadline must not be before due")
        return self

    def penalty(self, days_late: int) -> float:
        """The fraction of the score a submission this many (uncovered) days late loses."""
        return min(1.0, days_late * self.late_penalty_per_day)


class Queue(FrozenStrictModel):
    """In which order the service dispatches queued gradings (grader.service.ordering)."""

    order: QueueOrder = Field("fair", description="fair: student uploads first, round robin among students, a newer "
                                                  "upload supersedes an older queued one, regrades last; first_come: "
                                                  "in order of request")


class Course(FrozenStrictModel):
    """A course: its name, how dates are shown, the upload size cap, the queue's order and the assignments it offers."""

    name: str
    timezone: str = Field(description="IANA time zone the pages show dates in")
    max_upload_mb: float = Field(gt=0, description="largest upload accepted, before intake's own caps")
    late_days: int = Field(0, ge=0, description="grace days per student per term, used before any late penalty")
    queue: Queue = Field(default_factory=Queue, description="the order queued gradings are dispatched in")
    assignments: list[OfferedAssignment] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Course:
        ids = [offered.id for offered in self.assignments]
        if len(ids) != len(set(ids)):
            raise ValueError("every assignment may be offered only once")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def show_time(self, moment: datetime) -> str:
        """A moment as the course's pages show it, in the course's time zone."""
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def offered(self, assignment_id: str) -> OfferedAssignment | None:
        return next((offered for offered in self.assignments if offered.id == assignment_id), None)


def load_course(folder: Path) -> Course:
    """Read `folder/course.toml`, with one-sentence errors."""
    path = folder / COURSE_FILE
    if not path.is_file():
        raise GraderError(f"There is no {COURSE_FILE} in {folder}; create one with `grader course init`.")
    return load_toml_model(path, Course)


def course_template(name: str, now: datetime, zone: str) -> str:
    """The `course.toml` that `grader course init` writes: every assignment of the course root, due a week apart."""
    local = now.astimezone(ZoneInfo(zone)).replace(hour=23, minute=59, second=0, microsecond=0)
    blocks = []
    for week, assignment_id in enumerate(assignment_ids(), start=1):
        due = local + week * 7 * DAY
        blocks.append(f"""
[[assignments]]
id = "{assignment_id}"
due = {due.isoformat()}
hard_deadline = {(due + 3 * DAY).isoformat()}  # uploads after this are refused
late_penalty_per_day = 0.1  # fraction of the score lost per started day after `due`
submissions_per_day = 5  # graded submissions per student in any 24 hours
counts = "best"  # "best" or "latest": which graded submission is the grade
leaderboard = false  # true: a leaderboard of the metric on the hidden test images (accuracy or error), under pseudonyms
release = "immediately"  # when students see scores: "immediately", "after_due" or "when_published" (a TA's button)
""")
    header = f"""# The course `grader serve` runs; it rereads this file when it changes (max_upload_mb: at restart).
name = {json.dumps(name)}
timezone = "{zone}"  # dates on the pages are shown in this IANA time zone
max_upload_mb = 20  # the largest upload accepted; intake then applies the assignment's own caps
late_days = 0  # grace days per student for the term, used (the fewest needed) before any late penalty

[queue]
order = "fair"  # "fair": student uploads first, round robin among students, regrades last; or "first_come"
"""
    return header + "".join(blocks)
