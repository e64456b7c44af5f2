"""Load: 200 uploads from 50 concurrent clients against one `grader serve` process (grading held back, so the
test is about the service): every acknowledged upload is stored and queued exactly once; p95 latency recorded."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import httpx2
import pytest
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, RosterEntry, ServiceProcess, make_course_dir
from sqlalchemy import select

from grader.service.db import open_database
from grader.service.storage import upload_path
from grader.service.tables import Grading, GradingState, Person, Submission

pytestmark = [pytest.mark.service, pytest.mark.slow]
CLIENTS, UPLOADS_EACH = 50, 4
SOURCE = (EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py").read_bytes()
REQUEST_SECONDS, TEST_SECONDS = 120, 600


async def client_uploads(url: str, token: str, client_number: int) -> list[tuple[float, int, int]]:
    """One client's uploads, one after another: (seconds, status, submission id) each."""
    results = []
    async with httpx2.AsyncClient(base_url=url, timeout=REQUEST_SECONDS,
                                  headers={"Authorization": f"Bearer {token}"}) as client:
        for upload in range(UPLOADS_EACH):
            data = SOURCE + f"# client {client_number}, upload {upload}\n".encode()
            started = time.perf_counter()
            response = await client.post(f"/api/assignments/{A1}/submissions",
                                         files={"file": (f"upload{upload}.py", data)})
            seconds = time.perf_counter() - started
            results.append((seconds, response.status_code, response.json().get("id", -1)))
    return results


async def all_uploads(url: str, tokens: list[str]) -> list[tuple[float, int, int]]:
    batches = await asyncio.wait_for(asyncio.gather(
        *(client_uploads(url, token, n) for n, token in enumerate(tokens))), TEST_SECONDS)
    return [result for batch in batches for result in batch]


def test_200_uploads_from_50_clients_none_lost_none_duplicated(tmp_path: Path, database_url: str | None) -> None:
    students = [RosterEntry(f"load{n:02d}", f"Load Student {n}", f"load{n}@example.edu") for n in range(CLIENTS)]
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, database_url, {A1: {"submissions_per_day": UPLOADS_EACH}},
                                       students=students)
    server = ServiceProcess(course_dir, database_url, cluster="none")
    server.start()
    try:
        started = time.perf_counter()
        results = asyncio.run(all_uploads(server.url, [tokens[s.login] for s in students]))
        wall = time.perf_counter() - started
    finally:
        server.stop()
    assert [status for _, status, _ in results] == [201] * CLIENTS * UPLOADS_EACH
    acknowledged = sorted(submission_id for _, _, submission_id in results)
    with open_database(settings.database)() as db:
        rows = db.execute(select(Submission, Person.login).join(Person)).all()
        gradings = db.scalars(select(Grading)).all()
    assert sorted(submission.id for submission, _ in rows) == acknowledged  # none lost, none extra
    assert len({(login, submission.sha256) for submission, login in rows}) == len(rows)  # none duplicated
    assert sorted(g.submission_id for g in gradings) == acknowledged  # each queued exactly once
    assert all(g.state is GradingState.QUEUED for g in gradings)
    for submission, _ in rows:
        assert upload_path(settings.uploads_dir, submission.sha256, submission.stored_name).is_file()
    latencies = sorted(seconds for seconds, _, _ in results)
    figures = {"uploads": len(results), "clients": CLIENTS, "database": "postgresql" if database_url else "sqlite",
               "wall_seconds": round(wall, 2), "uploads_per_second": round(len(results) / wall, 1),
               "p50_seconds": round(statistics.median(latencies), 3),
               "p95_seconds": round(statistics.quantiles(latencies, n=20)[18], 3),
               "max_seconds": round(latencies[-1], 3), "load_average": os.getloadavg()}
    (tmp_path / "load.json").write_text(json.dumps(figures, indent=2))
    print(f"\nupload load: {json.dumps(figures)}")
