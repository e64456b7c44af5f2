"""The submission service: upload latency with many clients at once, and how soon an idle cluster starts
grading an acknowledged upload (dispatch latency), each against a real `grader serve` process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import psutil

from bench.common import Config, Result, Table
from grader.course import QueueOrder, course_template
from grader.paths import examples_dir
from grader.service.db import upgrade_database
from grader.service.people import RosterEntry, import_roster
from grader.service.settings import ServiceSettings
from grader.service.tables import Role, utcnow

NAME = "service"
ASSIGNMENT = "a1_dataset"  # no training: the numbers are about the service and the dispatch
SOURCE = (examples_dir() / ASSIGNMENT / "ada_full_marks" / "cifar_dataset.py").read_bytes()
GRADER = str(Path(sys.executable).with_name("grader"))
POLL_SECONDS = 0.02


def course(folder: Path, students: int, per_day: int, order: QueueOrder | None = None) -> dict[str, str]:
    """A course folder offering every assignment, `per_day` uploads a day, the queue in `order` (as `course init`
    writes it when None), with `students` tokens (logins b000, b001, ...)."""
    folder.mkdir(parents=True)
    text = course_template("Bench", utcnow(), "UTC")
    text = text.replace("submissions_per_day = 5", f"submissions_per_day = {per_day}")
    if order is not None:
        text = text.replace('order = "fair"', f'order = "{order}"')
    (folder / "course.toml").write_text(text)
    with upgrade_database(ServiceSettings(course_dir=folder).database)() as db:
        entries = [RosterEntry(f"b{n:03d}", f"Bench {n}", "") for n in range(students)]
        return {new.person.login: new.token for new in import_roster(db, entries, Role.STUDENT).tokens}


def ta_token(folder: Path) -> str:
    """A TA's token for the course folder (login ta)."""
    with upgrade_database(ServiceSettings(course_dir=folder).database)() as db:
        return import_roster(db, [RosterEntry("ta", "Bench TA", "")], Role.TA).tokens[0].token


@contextmanager
def serving(folder: Path, cluster: str, data_root: Path) -> Iterator[str]:
    """`grader serve` on a free port until the block ends, even by Ctrl-C: SIGTERM by PID, then SIGKILL by PID to
    whatever of its processes (an embedded Ray's) outlives it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"GRADER_DATA_DIR": str(data_root)}
    with (folder / "serve.log").open("a") as log:
        process = subprocess.Popen([GRADER, "serve", "--course-dir", str(folder), "--port", str(port),
                                    "--cluster", cluster], stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # a Ctrl-C reaches the benchmark, which stops it
    url = f"http://127.0.0.1:{port}"
    try:
        while process.poll() is None:
            try:
                httpx2.get(f"{url}/login", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.2)
        if process.poll() is not None:
            raise RuntimeError(f"grader serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the service by PID and wait (SIGKILL after 120 s); then SIGKILL its descendants that outlived it."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for child in descendants:  # psutil checks each is still the process it was (PID and start time)
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=30)


async def uploads(url: str, tokens: list[str], each: int) -> list[float]:
    """Every client uploads `each` distinct files one after another; the seconds of each upload."""

    async def client(number: int, token: str) -> list[float]:
        seconds = []
        async with httpx2.AsyncClient(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
            for upload in range(each):
                data = SOURCE + f"# {number} {upload}\n".encode()
                started = time.perf_counter()
                response = await c.post(f"/api/assignments/{ASSIGNMENT}/submissions",
                                        files={"file": ("cifar_dataset.py", data)})
                seconds.append(time.perf_counter() - started)
                response.raise_for_status()
        return seconds

    batches = await asyncio.gather(*(client(n, token) for n, token in enumerate(tokens)))
    return [s for batch in batches for s in batch]


def upload_latency(tmp: Path, cfg: Config, clients: int, each: int) -> dict[str, object]:
    tokens = course(tmp / "uploads", clients, each)
    with serving(tmp / "uploads", "none", cfg.data_root) as url:
        started = time.perf_counter()
        seconds = sorted(asyncio.run(uploads(url, list(tokens.values()), each)))
        wall = time.perf_counter() - started
    return {"clients": clients, "uploads": len(seconds), "wall s": wall, "uploads per s": len(seconds) / wall,
            "p50 s": statistics.median(seconds), "p95 s": statistics.quantiles(seconds, n=20)[18],
            "max s": seconds[-1]}


def dispatch_latency(tmp: Path, cfg: Config, rounds: int) -> list[dict[str, object]]:
    """Upload one submission at a time to an idle embedded Ray; time to its first stage and to its report."""
    tokens = course(tmp / "dispatch", 1, rounds + 1)
    headers = {"Authorization": f"Bearer {next(iter(tokens.values()))}"}
    rows = []
    with serving(tmp / "dispatch", "local", cfg.data_root) as url:
        for round_ in range(rounds + 1):  # the first warms Ray's workers up
            response = httpx2.post(f"{url}/api/assignments/{ASSIGNMENT}/submissions", headers=headers, timeout=120,
                                   files={"file": ("cifar_dataset.py", SOURCE + f"# {round_}\n".encode())})
            acknowledged, submission = time.perf_counter(), response.json()["id"]
            started = None
            while True:
                state = httpx2.get(f"{url}/api/submissions/{submission}", headers=headers, timeout=30).json()["state"]
                if state != "queued" and started is None:
                    started = time.perf_counter()
                if state == "done":
                    break
                time.sleep(POLL_SECONDS)
            done = time.perf_counter()
            rows.append({"upload": "warm-up" if round_ == 0 else round_, "to first stage s": started - acknowledged,
                         "to report s": done - acknowledged})
    return rows


def run(cfg: Config) -> Result:
    clients, each, rounds = (25, 4, 2) if cfg.quick else (50, 4, 5)
    with tempfile.TemporaryDirectory(prefix="bench-service-") as folder:
        tmp = Path(folder)
        uploads_row = upload_latency(tmp, cfg, clients, each)
        dispatch_rows = dispatch_latency(tmp, cfg, rounds)
    warm = [row for row in dispatch_rows if row["upload"] != "warm-up"]
    return Result(NAME, [
        Table(f"{uploads_row['uploads']} uploads from {clients} concurrent clients, grading held back "
              "(--cluster none), SQLite", [uploads_row]),
        Table(f"one {ASSIGNMENT} upload at a time, embedded Ray, idle", dispatch_rows),
    ], [f"dispatch latency (acknowledged upload -> first grading stage), median of {len(warm)}: "
        f"{statistics.median(r['to first stage s'] for r in warm):.2f} s; the status is polled every "
        f"{POLL_SECONDS * 1000:.0f} ms through the API"])
