"""The fair queue's order (grader.service.ordering): student uploads first and round robin among students, a newer
upload supersedes an older queued one, single regrades next, a whole assignment's regrade last; and the estimate."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grader.course import COURSE_FILE, QueueOrder, course_template, load_course
from grader.errors import GraderError
from grader.service.ordering import QueuedGrading, Reason, dispatch_order, estimate, superseded_by


def row(grading_id: int, person: int, reason: Reason = Reason.UPLOAD, submission: int | None = None,
        newest: int | None = None, assignment: str = "a1") -> QueuedGrading:
    submission = grading_id if submission is None else submission
    return QueuedGrading(grading_id=grading_id, submission_id=submission, person_id=person, assignment_id=assignment,
                         reason=reason, newest_submission_id=submission if newest is None else newest)


def order(rows: list[QueuedGrading], queue: QueueOrder = "fair") -> list[int]:
    return [r.grading_id for r in dispatch_order(rows, queue)]


def test_one_students_burst_does_not_delay_the_others() -> None:
    burst = [row(i, person=1, assignment=f"a{i}") for i in range(1, 6)]  # five assignments: none supersedes
    later = [row(6, person=2), row(7, person=3), row(8, person=2, assignment="a2")]
    assert order(burst + later) == [1, 6, 7, 2, 8, 3, 4, 5]


def test_uploads_go_before_single_regrades_and_those_before_a_regrade_of_all() -> None:
    rows = [row(1, 1, Reason.REGRADE_ALL), row(2, 2, Reason.REGRADE_ALL), row(3, 3, Reason.REGRADE),
            row(4, 1), row(5, 2, Reason.REGRADE), row(6, 4)]
    assert order(rows) == [4, 6, 3, 5, 1, 2]


def test_a_newer_upload_supersedes_the_older_queued_one_which_goes_last() -> None:
    older, newer = row(1, 1, submission=10, newest=12), row(2, 1, submission=12, newest=12)
    regrade_all = row(3, 2, Reason.REGRADE_ALL, submission=11, newest=11)
    assert superseded_by(older, "fair") == 12 and superseded_by(newer, "fair") is None
    assert order([older, newer, regrade_all, row(4, 3, submission=13)]) == [2, 4, 3, 1]


def test_a_superseded_upload_takes_no_turn_from_its_student() -> None:
    rows = [row(1, 1, submission=1, newest=3), row(2, 2, submission=2), row(3, 1, submission=3, newest=3)]
    assert order(rows) == [2, 3, 1]  # student 1's newest upload competes as their first turn, in request order


def test_a_regrade_is_never_superseded() -> None:
    assert superseded_by(row(1, 1, Reason.REGRADE, submission=1, newest=5), "fair") is None


def test_first_come_order_dispatches_by_request_and_supersedes_nothing() -> None:
    rows = [row(1, 1, Reason.REGRADE_ALL), row(2, 2, submission=2, newest=4), row(3, 1, Reason.REGRADE),
            row(4, 2, submission=4, newest=4), row(5, 3)]
    assert order(rows, "fair") == [4, 5, 3, 1, 2]
    assert order(rows[::-1], "first_come") == [1, 2, 3, 4, 5]
    assert superseded_by(rows[1], "fair") == 4 and superseded_by(rows[1], "first_come") is None


def course_with_queue(folder: Path, section: str | None) -> Path:
    """`grader course init`'s course.toml with its `[queue]` section as written, left out (""), or replaced."""
    template = course_template("Queue", datetime.now(UTC), "UTC")
    text = template if section is None else re.sub(r"\[queue\]\norder = .*\n", section, template)
    (folder / COURSE_FILE).write_text(text)
    return folder


@pytest.mark.parametrize(("section", "expected"), [(None, "fair"), ("", "fair"),
                                                   ('[queue]\norder = "first_come"\n', "first_come")])
def test_course_toml_chooses_the_queue_order(section: str | None, expected: QueueOrder, tmp_path: Path) -> None:
    """`[queue] order` in course.toml (fair as written by `course init`, and when left out) orders the queue."""
    chosen = load_course(course_with_queue(tmp_path, section)).queue.order
    assert chosen == expected
    rows = [row(1, 1, Reason.REGRADE_ALL), row(2, 2)]
    assert order(rows, chosen) == ([2, 1] if expected == "fair" else [1, 2])


def test_an_unknown_queue_order_is_one_sentence_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(GraderError) as raised:
        load_course(course_with_queue(tmp_path, '[queue]\norder = "lifo"\n'))
    assert "queue.order" in str(raised.value) and "'fair' or 'first_come'" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_estimate_is_the_median_duration_per_round_of_workers() -> None:
    durations = [timedelta(minutes=m) for m in (2, 3, 10)]
    assert estimate(durations, place=1, workers=4) == timedelta(minutes=3)
    assert estimate(durations, place=5, workers=4) == timedelta(minutes=6)
    assert estimate(durations, place=9, workers=4) == timedelta(minutes=9)
    assert estimate([], place=1, workers=4) is None


def test_in_a_simulated_rush_the_fair_queue_shortens_the_students_wait() -> None:
    """bench/rush_sim.py's simulation, small: the same uploads, two workers, a regrade of all at the same minute."""
    import random

    from bench.common import percentile
    from bench.rush_sim import rush, simulate

    uploads = rush(random.Random(1), students=60)
    fair, first_come = (simulate(uploads, 2, order, random.Random(2)) for order in ("fair", "first_come"))
    assert len(fair.waits) == len(first_come.waits) == len(uploads) == 180
    assert percentile(fair.waits, 0.95) * 5 < percentile(first_come.waits, 0.95)  # 14 s against 141 s
    assert fair.superseded > 0 == first_come.superseded


def test_the_live_rush_reads_each_uploads_wait_from_the_recorded_phases() -> None:
    """bench/rush.py: a wait lasts until the upload, or a newer one of the same student, started grading; an upload
    none of which started waits until the end."""
    from bench.rush import waits
    from grader.service.tables import Grading, Submission

    t0 = datetime(2026, 12, 6, 12, tzinfo=UTC)

    def upload(submission: int, person: int, at: float, *started: float) -> Submission:
        gradings = [Grading(started_at=t0 + timedelta(seconds=s)) for s in started] or [Grading(started_at=None)]
        return Submission(id=submission, person_id=person, submitted_at=t0 + timedelta(seconds=at), gradings=gradings)

    rows = [upload(1, 1, 0, 50, 300), upload(2, 2, 5, 20), upload(3, 1, 10, 30), upload(4, 3, 40)]
    found = waits(rows, until=(t0 + timedelta(seconds=100)).timestamp())
    assert found.seconds == [30, 15, 20, 60]  # the first upload is overtaken by student 1's newer one at 30 s
    assert (found.superseded, found.unstarted) == (1, 1)
