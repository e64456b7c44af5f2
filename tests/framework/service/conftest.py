"""Fixtures for the submission service: the app on SQLite or a throwaway PostgreSQL cluster, and real gradings
of the example submissions to finish queued gradings with."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from service_harness import A1, A2, A2_FULL, EXAMPLES, Served, free_port, make_course_dir, missing

from grader.config import load_assignment
from grader.paths import examples_dir
from grader.pipeline import GradeOptions, grade
from grader.service.app import create_app


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a free port, run by an unprivileged user, stopped by PID."""
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    if bindir is None or not (bindir / "initdb").is_file():
        missing("PostgreSQL is not installed (apt-get install postgresql; scripts/test.sh does it)")
    root = Path(tempfile.mkdtemp(prefix="grader-pg-"))
    user = "nobody" if os.geteuid() == 0 else None  # initdb refuses to run as root
    if user:
        shutil.chown(root, user)
    port = free_port()
    run = dict(user=user, check=True, capture_output=True, text=True, timeout=120)
    subprocess.run([bindir / "initdb", "-D", root / "data", "-U", "grader", "--auth=trust", "-E", "UTF8",
                    "--no-sync"], **run)
    subprocess.run([bindir / "pg_ctl", "-D", root / "data", "-l", root / "log", "-w", "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], **run)
    pid = int((root / "data" / "postmaster.pid").read_text().split()[0])
    try:
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}"
    finally:
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown
        for _ in range(300):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)





@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's chromium under Playwright (Playwright's own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("GRADER_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        missing("chromium is not installed (apt-get install chromium; scripts/test.sh does it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_database(request: pytest.FixtureRequest) -> Callable[[], str | None]:
    """Makes databases for a test: None (SQLite in each course folder), or a fresh database on the throwaway
    PostgreSQL cluster each call."""
    if request.param == "sqlite":
        return lambda: None
    import psycopg

    server = request.getfixturevalue("postgres_server")

    def create() -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        return f"{server}/{name}"

    return create


@pytest.fixture
def database_url(new_database: Callable[[], str | None]) -> str | None:
    """One database for the test (see `new_database`)."""
    return new_database()


@pytest.fixture
def serve(tmp_path: Path, new_database: Callable[[], str | None]) -> Iterator[Callable[..., Served]]:
    """Start the service (grading held back) for a course offering a1 with the given rules, and a2 when given;
    `course` adds course-wide keys."""
    started: list[Served] = []

    def start(max_upload_mb: float = 1.0, a2: dict[str, object] | None = None,
              course: dict[str, object] | None = None, **rules: object) -> Served:
        offered = {A1: rules} | ({A2: a2} if a2 is not None else {})
        settings, tokens = make_course_dir(tmp_path / f"course{len(started)}", new_database(), offered,
                                           max_upload_mb, course=course)
        client = TestClient(create_app(settings))
        client.__enter__()
        served = Served(client, tokens)
        started.append(served)
        return served

    yield start
    for served in started:
        for client in [*served.clients, served.client]:
            client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def graded_a1(synthetic_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report folders of the a1 examples (full marks, weak, broken), graded once by the real pipeline."""
    out = tmp_path_factory.mktemp("graded-a1")
    assignment = load_assignment(A1)
    for key, name in EXAMPLES.items():
        grade(assignment, examples_dir() / A1 / name, out / key,
              GradeOptions(data_root=synthetic_cifar, student_id=key))
    return {key: out / key for key in EXAMPLES}


@pytest.fixture(scope="session")
def graded_a2(synthetic_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report folder of the a2 full-marks example notebook, trained and evaluated by the real pipeline."""
    out = tmp_path_factory.mktemp("graded-a2")
    grade(load_assignment(A2), A2_FULL, out, GradeOptions(data_root=synthetic_cifar, student_id="dana"))
    return out


