"""A deadline rush against a real `grader serve` with its embedded Ray, once in the fair queue's order and once in
first-come order (course.toml `[queue] order`), side by side in one run.

Students upload a1 through the HTTP API on a time-compressed schedule (bench/rush_sim.py's rush, scaled to a 2-core
machine) and a TA regrades every submission part way; each upload's wait comes from the phases the service records
in its database: from the upload until it, or a newer upload of the same student, starts grading.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import ORDERS, Config, Result, Table, percentile
from bench.rush_sim import REGRADE_ALL_AT_MINUTE, RUSH_MINUTES, UPLOADS_EACH, Upload, rush
from bench.service import ASSIGNMENT, SOURCE, course, serving, ta_token
from grader.course import QueueOrder
from grader.service.db import open_database
from grader.service.settings import ServiceSettings
from grader.service.tables import Submission

NAME = "rush"
STUDENTS, RUSH_SECONDS, SPACING_SECONDS = 10, 120.0, 15.0  # with --quick: half the students and half the time
REGRADE_ALL_AT = REGRADE_ALL_AT_MINUTE / RUSH_MINUTES  # how far into the rush a TA regrades all, as simulated
DRAIN_SECONDS = 240.0  # after the rush, how long uploads may wait to start grading before the run ends anyway
WARM_UP_SECONDS = 300.0  # Ray's start and the first grading, which starts Ray's worker and its sandbox
POLL_SECONDS = 1.0
SEED = 20261206


@dataclass(frozen=True)
class Rush:
    """One rush: the uploads (seconds into it, student), how many students and how long."""

    uploads: list[Upload]
    students: int
    seconds: float

    @property
    def regrade_at(self) -> float:
        return self.seconds * REGRADE_ALL_AT


@dataclass(frozen=True)
class Waits:
    """Each student upload's wait: seconds until it, or a newer upload of the student, started grading (until the
    end for those none of which had started); how many had not started, and how many a newer upload overtook."""

    seconds: list[float]
    unstarted: int
    superseded: int


@dataclass(frozen=True)
class Outcome:
    waits: Waits
    regrades: int  # gradings the regrade of all queued
    started: int  # gradings started by the end, regrades included
    grading_seconds: float  # the median grading, from its first stage to its report
    load: float  # the 1-minute load average when the rush began


def rush_submissions(db: Session, warm_up: int) -> list[Submission]:
    """The rush's uploads: every submission after the warm-up's."""
    return list(db.scalars(select(Submission).where(Submission.id > warm_up).order_by(Submission.id)))


def waits(submissions: list[Submission], until: float) -> Waits:
    """The waits of the submissions, from the upload and started phases the service recorded; `until` is a POSIX
    time."""
    started = {s.id: min((g.started_at.timestamp() for g in s.gradings if g.started_at), default=None)
               for s in submissions}
    seconds, unstarted, superseded = [], 0, 0
    for s in submissions:
        newer = [started[n.id] for n in submissions if n.person_id == s.person_id and n.id >= s.id]
        first = min((at for at in newer if at is not None), default=None)
        unstarted += first is None
        superseded += first is not None and first != started[s.id]
        seconds.append((until if first is None else first) - s.submitted_at.timestamp())
    return Waits(seconds, unstarted, superseded)


async def play(url: str, tokens: list[str], ta: str, plan: Rush) -> int:
    """Upload on the rush's schedule and regrade every submission at its moment; the gradings the regrade queued."""
    began = time.monotonic()

    async def at(moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - (time.monotonic() - began)))

    async def upload(number: int, upload: Upload, client: httpx2.AsyncClient) -> None:
        await at(upload.at)
        response = await client.post(f"/api/assignments/{ASSIGNMENT}/submissions",
                                     headers={"Authorization": f"Bearer {tokens[upload.student]}"},
                                     files={"file": ("cifar_dataset.py", SOURCE + f"# rush {number}\n".encode())})
        response.raise_for_status()

    async def regrade(client: httpx2.AsyncClient) -> int:
        await at(plan.regrade_at)
        response = await client.post(f"/api/ta/assignments/{ASSIGNMENT}/regrade",
                                     headers={"Authorization": f"Bearer {ta}"})
        response.raise_for_status()
        return int(response.json()["queued"])

    async with httpx2.AsyncClient(base_url=url, timeout=120) as client:
        queued, _ = await asyncio.gather(regrade(client),
                                         asyncio.gather(*(upload(n, u, client) for n, u in enumerate(plan.uploads))))
    return queued


def warm_up(url: str, token: str) -> int:
    """One upload graded to its report, so that Ray, its worker and the warm sandbox are up before the rush; its
    submission id."""
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx2.post(f"{url}/api/assignments/{ASSIGNMENT}/submissions", headers=headers, timeout=120,
                           files={"file": ("cifar_dataset.py", SOURCE + b"# warm-up\n")})
    response.raise_for_status()
    submission, deadline = int(response.json()["id"]), time.monotonic() + WARM_UP_SECONDS
    while httpx2.get(f"{url}/api/submissions/{submission}", headers=headers, timeout=30).json()["state"] != "done":
        if time.monotonic() > deadline:
            raise RuntimeError(f"the warm-up upload was not graded in {WARM_UP_SECONDS:g} s; see serve.log")
        time.sleep(POLL_SECONDS)
    return submission


def drain(sessions: sessionmaker[Session], warm_up: int) -> None:
    """Wait until every upload of the rush, or a newer one of its student, started grading, or time is up."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        with sessions() as db:
            if not waits(rush_submissions(db, warm_up), time.time()).unstarted:
                return
        time.sleep(POLL_SECONDS)


def outcome(sessions: sessionmaker[Session], warm_up: int, regrades: int, load: float) -> Outcome:
    """The waits and gradings of the rush, read from the service's database when it ended."""
    with sessions() as db:
        submissions = rush_submissions(db, warm_up)
        everything = db.scalars(select(Submission).order_by(Submission.id))
        gradings = [g for s in everything for g in s.gradings][1:]  # the warm-up's first grading left out
        took = [(g.finished_at - g.started_at).total_seconds() for g in gradings if g.started_at and g.finished_at]
        return Outcome(waits(submissions, time.time()), regrades, sum(g.started_at is not None for g in gradings),
                       statistics.median(took), load)


def one_order(folder: Path, cfg: Config, order: QueueOrder, plan: Rush) -> Outcome:
    """A fresh course in `order` served with the embedded Ray: warm it up, play the rush, wait for it to start."""
    tokens = list(course(folder, plan.students + 1, UPLOADS_EACH, order).values())  # the last one warms up
    ta, sessions = ta_token(folder), open_database(ServiceSettings(course_dir=folder).database)
    with serving(folder, "local", cfg.data_root) as url:
        first = warm_up(url, tokens[-1])
        load = os.getloadavg()[0]
        regrades = asyncio.run(play(url, tokens, ta, plan))
        drain(sessions, first)
        ended = outcome(sessions, first, regrades, load)
    return ended


def row(order: QueueOrder, result: Outcome) -> dict[str, object]:
    seconds = result.waits.seconds
    return {"order": ORDERS[order], "uploads": len(seconds), "p50 wait s": statistics.median(seconds),
            "p95 wait s": percentile(seconds, 0.95), "max wait s": max(seconds),
            "not started at the end": result.waits.unstarted, "superseded, graded later": result.waits.superseded,
            "regrades queued": result.regrades, "gradings started": result.started,
            "median grading s": result.grading_seconds, "load at start": result.load}


def run(cfg: Config) -> Result:
    students, seconds = (STUDENTS // 2, RUSH_SECONDS / 2) if cfg.quick else (STUDENTS, RUSH_SECONDS)
    plan = Rush(rush(random.Random(SEED), students, seconds, SPACING_SECONDS), students, seconds)
    with tempfile.TemporaryDirectory(prefix="bench-rush-") as folder:
        rows = [row(order, one_order(Path(folder) / order, cfg, order, plan)) for order in ORDERS]
    return Result(NAME, [Table(f"{students} students x {UPLOADS_EACH} {ASSIGNMENT} uploads in {seconds:g} s, a "
                               f"regrade of all at {plan.regrade_at:g} s; grader serve, embedded Ray", rows)],
                  ["A wait is from an upload until it, or a newer upload of the same student, starts grading (the "
                   "uploaded and started phases the service records). Each order gets a fresh service and course; "
                   "one upload graded first warms Ray up. Uploads not started "
                   f"{DRAIN_SECONDS:g} s after the rush count their wait until then."])
