"""A deadline rush at scale, the companion of the live one (bench/rush.py): the service's own ordering
(grader.service.ordering) in both orders, side by side, on a simulated clock with measured a1 grading times.

900 a1 gradings plus a regrade of all take over an hour of CPU on a 2-core machine, so a discrete-event simulation
plays the job loop (dispatch the head of the order whenever a worker is free, as grader.service.dispatch does) and
feeds the real ordering the same rows the service would, with 2 to 8 workers.
"""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass, field

from bench.common import ORDERS, Config, Result, Table, percentile
from grader.course import QueueOrder
from grader.service.ordering import QueuedGrading, Reason, dispatch_order

NAME = "rush-sim"
STUDENTS, UPLOADS_EACH, RUSH_MINUTES = 300, 3, 30.0
SPACING_SECONDS = 120.0  # the mean time between a student's uploads
REGRADE_ALL_AT_MINUTE = 20.0  # a TA regrades every submission so far, two thirds into the rush
# An a1 upload to its report on embedded Ray, measured by `bench --only service` (docs/benchmarks/service.md).
A1_SECONDS = (4.4, 5.0)
WORKERS = (2, 4, 8)  # a1 asks for 2 CPUs: a 4-, 8- and 16-core grading node
SEED = 20261206


@dataclass(order=True)
class Upload:
    at: float  # seconds into the rush
    student: int = field(compare=False)


def rush(rng: random.Random, students: int, seconds: float = RUSH_MINUTES * 60,
         spacing: float = SPACING_SECONDS) -> list[Upload]:
    """Each student's first upload comes more likely near the deadline (density rising linearly), the others
    `spacing` seconds apart on average (exponential), all before the deadline, `seconds` into the rush."""
    uploads = []
    for student in range(students):
        at = seconds * rng.random() ** 0.5
        for _ in range(UPLOADS_EACH):
            uploads.append(Upload(min(at, seconds), student))
            at += rng.expovariate(1 / spacing)
    return sorted(uploads)


@dataclass
class Outcome:
    waits: list[float]  # per student upload: seconds until this or a newer upload of the student starts grading
    regrades_done: float  # seconds into the rush when the last regrade finished
    superseded: int  # uploads that started grading after a newer upload of the same student


class JobLoop:
    """The service's job loop on a simulated clock: uploads and a regrade of all queue gradings, and whenever a
    worker is free the head of the order is dispatched."""

    def __init__(self, workers: int, order: QueueOrder, rng: random.Random) -> None:
        self.workers, self.order, self.rng = workers, order, rng
        self.queued: dict[int, QueuedGrading] = {}
        self.running: list[tuple[float, int, int]] = []  # (finishes at, grading id, submission id), a heap
        self.submitted: dict[int, tuple[int, float]] = {}  # submission id -> (student, uploaded at)
        self.started: dict[int, float] = {}  # submission id -> when its first grading started
        self.regrades: set[int] = set()
        self.regrades_done = 0.0
        self.gradings = 0

    def enqueue(self, submission: int, student: int, reason: Reason) -> None:
        self.gradings += 1
        self.queued[self.gradings] = QueuedGrading(
            grading_id=self.gradings, submission_id=submission, person_id=student, assignment_id="a1_dataset",
            reason=reason, newest_submission_id=submission)
        if reason is not Reason.UPLOAD:
            self.regrades.add(self.gradings)

    def upload(self, upload: Upload) -> None:
        submission = len(self.submitted) + 1
        self.submitted[submission] = (upload.student, upload.at)
        for row in self.queued.values():  # what the service reads as the student's newest submission
            if row.person_id == upload.student:
                row.newest_submission_id = submission
        self.enqueue(submission, upload.student, Reason.UPLOAD)

    def regrade_all(self) -> None:
        """Like request_regrade: every submission not already waiting or being graded."""
        waiting = {row.submission_id for row in self.queued.values()} | {s for _, _, s in self.running}
        for submission, (student, _) in list(self.submitted.items()):
            if submission not in waiting:
                self.enqueue(submission, student, Reason.REGRADE_ALL)

    def finish_until(self, now: float) -> None:
        while self.running and self.running[0][0] <= now:
            _, grading_id, _ = heapq.heappop(self.running)
            if grading_id in self.regrades:
                self.regrades_done = max(self.regrades_done, now)

    def dispatch(self, now: float) -> None:
        while self.queued and len(self.running) < self.workers:
            head = dispatch_order(list(self.queued.values()), self.order)[0]
            del self.queued[head.grading_id]
            self.started.setdefault(head.submission_id, now)
            heapq.heappush(self.running, (now + self.rng.uniform(*A1_SECONDS), head.grading_id, head.submission_id))

    def outcome(self) -> Outcome:
        """For each upload: seconds until it, or a newer upload of the same student, started grading."""
        waits, superseded = [], 0
        for submission, (student, at) in self.submitted.items():
            first = min(self.started[s] for s, (who, _) in self.submitted.items() if who == student and s >= submission)
            waits.append(first - at)
            superseded += first < self.started[submission]
        return Outcome(waits=waits, regrades_done=self.regrades_done, superseded=superseded)


def simulate(uploads: list[Upload], workers: int, order: QueueOrder, rng: random.Random) -> Outcome:
    """Grade the rush with `workers` workers, in the fair queue's order or first come first served."""
    loop = JobLoop(workers, order, rng)
    arrivals, regrade_at = list(uploads), REGRADE_ALL_AT_MINUTE * 60
    while arrivals or loop.queued or loop.running or regrade_at < float("inf"):
        now = min(arrivals[0].at if arrivals else float("inf"), loop.running[0][0] if loop.running else float("inf"),
                  regrade_at)
        loop.finish_until(now)
        while arrivals and arrivals[0].at <= now:
            loop.upload(arrivals.pop(0))
        if regrade_at <= now:
            loop.regrade_all()
            regrade_at = float("inf")
        loop.dispatch(now)
    return loop.outcome()


def run(cfg: Config) -> Result:
    students = STUDENTS // 3 if cfg.quick else STUDENTS
    uploads = rush(random.Random(SEED), students)
    rows = []
    for workers in WORKERS:
        for order in ORDERS:
            outcome = simulate(uploads, workers, order, random.Random(SEED + workers))
            rows.append({"workers": workers, "order": ORDERS[order],
                         "p50 wait s": statistics.median(outcome.waits), "p95 wait s": percentile(outcome.waits, 0.95),
                         "max wait s": max(outcome.waits), "superseded graded later": outcome.superseded,
                         "regrade-all done min": outcome.regrades_done / 60})
    return Result(NAME, [Table(f"{students} students x {UPLOADS_EACH} a1 uploads in {RUSH_MINUTES:g} simulated "
                               f"minutes, regrade of all at minute {REGRADE_ALL_AT_MINUTE:g}", rows)],
                  [f"Simulated clock; each grading takes {A1_SECONDS[0]}-{A1_SECONDS[1]} s (uniform), the measured "
                   "a1 upload-to-report time on embedded Ray. A wait is from an upload until it, or a newer upload "
                   "of the same student, starts grading."])
