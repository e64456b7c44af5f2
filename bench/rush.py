"""A deadline rush against the fair queue: the service's own ordering (grader.service.ordering) and plain
first-come order, side by side in one run, on a simulated clock with measured a1 grading times.

Not a run of `grader serve`: 900 a1 gradings plus a regrade of all take over an hour of CPU on this 2-core machine,
so a discrete-event simulation plays the job loop instead (dispatch the head of the order whenever a worker is free,
as grader.service.dispatch does) and feeds the real ordering the same rows the service would.
"""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass, field

from bench.common import Config, Result, Table
from grader.service.ordering import QueuedGrading, Reason, dispatch_order

NAME = "rush"
STUDENTS, UPLOADS_EACH, RUSH_MINUTES = 300, 3, 30.0
REGRADE_ALL_AT_MINUTE = 20.0  # a TA regrades every submission so far, two thirds into the rush
# An a1 upload to its report on embedded Ray, measured by `bench --only service` (docs/benchmarks/service.md).
A1_SECONDS = (4.4, 5.0)
WORKERS = (2, 4, 8)  # a1 asks for 2 CPUs: a 4-, 8- and 16-core grading node
SEED = 20261206


@dataclass(order=True)
class Upload:
    at: float  # seconds into the rush
    student: int = field(compare=False)


def rush(rng: random.Random, students: int) -> list[Upload]:
    """Each student's first upload comes more likely near the deadline (density rising linearly), the others
    a few minutes apart (exponential, mean 2 min), all before the deadline."""
    uploads = []
    end = RUSH_MINUTES * 60
    for student in range(students):
        at = end * rng.random() ** 0.5
        for _ in range(UPLOADS_EACH):
            uploads.append(Upload(min(at, end), student))
            at += rng.expovariate(1 / 120)
    return sorted(uploads)


@dataclass
class Outcome:
    waits: list[float]  # per student upload: seconds until this or a newer upload of the student starts grading
    regrades_done: float  # seconds into the rush when the last regrade finished
    superseded: int


def simulate(uploads: list[Upload], workers: int, fair: bool, rng: random.Random) -> Outcome:
    """Grade the rush with `workers` workers, dispatching in the fair queue's order or first come first served."""
    queued: dict[int, QueuedGrading] = {}
    newest: dict[int, int] = {}  # student -> their newest submission id
    submitted: dict[int, tuple[int, float]] = {}  # submission id -> (student, uploaded at)
    started: dict[int, float] = {}  # submission id -> when its first grading started
    running: list[tuple[float, int, int]] = []  # (finishes at, grading id, submission id)
    regrade_ids: set[int] = set()
    regrades_done, next_id, now = 0.0, 0, 0.0
    arrivals = list(uploads)
    regrade_pending = True

    def enqueue(submission: int, student: int, reason: Reason) -> None:
        nonlocal next_id
        next_id += 1
        queued[next_id] = QueuedGrading(grading_id=next_id, submission_id=submission, person_id=student,
                                        assignment_id="a1_dataset", reason=reason, newest_submission_id=submission)
        if reason is not Reason.UPLOAD:
            regrade_ids.add(next_id)

    while arrivals or queued or running:
        candidates = [arrivals[0].at if arrivals else float("inf"), running[0][0] if running else float("inf")]
        if regrade_pending:
            candidates.append(REGRADE_ALL_AT_MINUTE * 60)
        now = min(candidates)
        while running and running[0][0] <= now:
            _, grading_id, _ = heapq.heappop(running)
            if grading_id in regrade_ids:
                regrades_done = max(regrades_done, now)
        while arrivals and arrivals[0].at <= now:
            upload = arrivals.pop(0)
            submission = len(submitted) + 1
            submitted[submission] = (upload.student, upload.at)
            newest[upload.student] = submission
            for row in queued.values():
                if row.person_id == upload.student and row.reason is Reason.UPLOAD:
                    row.newest_submission_id = submission
            enqueue(submission, upload.student, Reason.UPLOAD)
        if regrade_pending and now >= REGRADE_ALL_AT_MINUTE * 60:
            regrade_pending = False
            waiting = {row.submission_id for row in queued.values()} | {s for _, _, s in running}
            for submission, (student, _) in list(submitted.items()):
                if submission not in waiting:
                    enqueue(submission, student, Reason.REGRADE_ALL)
        while queued and len(running) < workers:
            head = dispatch_order(list(queued.values()))[0] if fair else queued[min(queued)]
            del queued[head.grading_id]
            started.setdefault(head.submission_id, now)
            heapq.heappush(running, (now + rng.uniform(*A1_SECONDS), head.grading_id, head.submission_id))
    return Outcome(waits=_waits(submitted, started), regrades_done=regrades_done,
                   superseded=sum(1 for s in submitted if started[s] > min(
                       (started[n] for n in submitted if n > s and submitted[n][0] == submitted[s][0]),
                       default=float("inf"))))


def _waits(submitted: dict[int, tuple[int, float]], started: dict[int, float]) -> list[float]:
    """For each upload: seconds until it, or a newer upload of the same student, started grading."""
    by_student: dict[int, list[int]] = {}
    for submission, (student, _) in submitted.items():
        by_student.setdefault(student, []).append(submission)
    waits = []
    for submission, (student, at) in submitted.items():
        first = min(started[s] for s in by_student[student] if s >= submission)
        waits.append(first - at)
    return waits


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


def run(cfg: Config) -> Result:
    students = STUDENTS // 3 if cfg.quick else STUDENTS
    uploads = rush(random.Random(SEED), students)
    rows = []
    for workers in WORKERS:
        for fair in (True, False):
            outcome = simulate(uploads, workers, fair, random.Random(SEED + workers))
            rows.append({"workers": workers, "order": "fair queue" if fair else "first come",
                         "p50 wait s": statistics.median(outcome.waits), "p95 wait s": percentile(outcome.waits, 0.95),
                         "max wait s": max(outcome.waits), "superseded graded later": outcome.superseded,
                         "regrade-all done min": outcome.regrades_done / 60})
    return Result(NAME, [Table(f"{students} students x {UPLOADS_EACH} a1 uploads in {RUSH_MINUTES:g} simulated "
                               f"minutes, regrade of all at minute {REGRADE_ALL_AT_MINUTE:g}", rows)],
                  [f"Simulated clock; each grading takes {A1_SECONDS[0]}-{A1_SECONDS[1]} s (uniform), the measured "
                   "a1 upload-to-report time on embedded Ray. A wait is from an upload until it, or a newer upload "
                   "of the same student, starts grading."])
