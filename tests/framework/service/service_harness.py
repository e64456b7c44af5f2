"""The submission service under test: course folders, the app in a TestClient with a roster's tokens, and
finishing gradings with real reports the way a worker would."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grader.config import load_assignment
from grader.graded_code import GRADED_DIR
from grader.paths import examples_dir
from grader.reports import read_report_json, write_all
from grader.reports.files import REPORT_JSON
from grader.service.context import ServiceContext
from grader.service.db import upgrade_database
from grader.service.dispatch import recover
from grader.service.people import RosterEntry, import_roster
from grader.service.settings import ServiceSettings
from grader.service.storage import report_dir
from grader.service.tables import Role, Submission

GRADER = str(Path(sys.executable).with_name("grader"))
A1 = "a1_dataset"
A2 = "a2_ffn"
STUDENTS = [RosterEntry("s1", "Ann One", "ann@example.edu"), RosterEntry("s2", "Bob Two", "bob@example.edu")]
TAS = [RosterEntry("ta1", "Tim Assistant", "tim@example.edu")]
EXAMPLES = {"full": "ada_full_marks", "weak": "ben_weak", "broken": "cy_broken"}
EXAMPLES_DIR = examples_dir()
A2_FULL = EXAMPLES_DIR / A2 / "dana_full_marks.ipynb"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def missing(reason: str) -> None:
    """Skip locally with one line; under CI=true a missing dependency is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def offered_toml(assignment_id: str, rules: dict[str, object]) -> str:
    """One [[assignments]] entry (defaults: due in a week, open, 5 a day, best counts, no leaderboard)."""
    now = datetime.now(UTC)
    values = {"due": now + timedelta(days=7), "hard_deadline": now + timedelta(days=10), "late_penalty_per_day": 0.1,
              "submissions_per_day": 5, "counts": "best", "leaderboard": False, **rules}
    lines = [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return f'\n[[assignments]]\nid = "{assignment_id}"\n' + "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower()


def course_toml(offered: dict[str, dict[str, object]], max_upload_mb: float = 1.0,
                course: dict[str, object] | None = None) -> str:
    """A course.toml offering the given assignments; `course` adds or replaces course-wide keys (e.g. late_days)."""
    keys = {"name": "Test course", "timezone": "UTC", "max_upload_mb": max_upload_mb, **(course or {})}
    head = "".join(f"{key} = {toml_value(value)}\n" for key, value in keys.items())
    return head + "".join(offered_toml(assignment_id, rules) for assignment_id, rules in offered.items())


@dataclass
class Served:
    """One service under test: its app in a TestClient, and the login tokens of the roster."""

    client: TestClient
    tokens: dict[str, str]
    clients: list[TestClient] = field(default_factory=list)

    @property
    def context(self) -> ServiceContext:
        return self.client.app.state.service

    def bearer(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    def browser(self, login: str | None = None) -> TestClient:
        """A separate cookie jar (a person's browser), logged in through the login form when `login` is given."""
        client = TestClient(self.client.app, follow_redirects=True)
        client.__enter__()
        self.clients.append(client)
        if login is not None:
            page = client.get("/login")
            response = client.post("/login", data={"token": self.tokens[login], "csrf": csrf_of(page.text)})
            assert response.status_code == 200, response.text
        return client

    def hand_in(self, login: str, example: str = "full", name: str = "cifar_dataset.py",
                assignment: str = A1, source: Path | None = None) -> dict:
        """Upload an a1 example (or `source`) through the API; returns the submission's JSON (asserts acceptance)."""
        source = source or EXAMPLES_DIR / A1 / EXAMPLES[example] / "cifar_dataset.py"
        response = self.client.post(f"/api/assignments/{assignment}/submissions", headers=self.bearer(login),
                                    files={"file": (name, source.read_bytes())})
        assert response.status_code == 201, response.text
        return response.json()


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_course_dir(folder: Path, database_url: str | None, offered: dict[str, dict[str, object]],
                    max_upload_mb: float = 1.0, students: list[RosterEntry] = STUDENTS,
                    course: dict[str, object] | None = None) -> tuple[ServiceSettings, dict[str, str]]:
    """A course folder with course.toml and the roster imported; returns the settings and every login token."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "course.toml").write_text(course_toml(offered, max_upload_mb, course))
    settings = ServiceSettings(course_dir=folder, database_url=database_url, cluster=None)
    tokens = {}
    with upgrade_database(settings.database)() as db:
        for entries, role in ((students, Role.STUDENT), (TAS, Role.TA)):
            issued = import_roster(db, entries, role).tokens
            tokens.update({new.person.login: new.token for new in issued})
    return settings, tokens


def finish(served: Served, submission_id: int, graded: Path) -> None:
    """Finish a submission's newest grading with a real report, the way a worker does (report folder first),
    and let the job loop's recovery record it."""
    finish_grading(served.context, submission_id, graded)


def finish_grading(context: ServiceContext, submission_id: int, graded: Path) -> None:
    """`finish` for any service's context (one running as its own process too: its database and folders)."""
    with context.sessions() as db:
        submission = db.scalar(select(Submission).where(Submission.id == submission_id))
        grading_id, login = submission.gradings[-1].id, submission.person.login
    report = read_report_json(graded / REPORT_JSON)
    report = report.model_copy(update={"submission": report.submission.model_copy(update={"student_id": login})})
    folder = report_dir(context.settings.reports_dir, grading_id)
    if (graded / GRADED_DIR).is_dir():
        shutil.copytree(graded / GRADED_DIR, folder / GRADED_DIR, dirs_exist_ok=True)
    write_all(report, load_assignment(report.assignment_id), folder)
    recover(context.settings, context.course, context.sessions)


class ServiceProcess:
    """`grader serve` as its own process on 127.0.0.1 and a free port, ended by PID."""

    def __init__(self, course_dir: Path, database_url: str | None = None, cluster: str = "none",
                 extra_env: dict[str, str] | None = None) -> None:
        self.course_dir, self.database_url, self.cluster = course_dir, database_url, cluster
        self.env = {**os.environ, **(extra_env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = course_dir / "serve.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready_seconds: float = 180) -> None:
        command = [GRADER, "serve", "--course-dir", str(self.course_dir), "--port", str(self.port),
                   "--cluster", self.cluster]
        if self.database_url:
            command += ["--database", self.database_url]
        with self.log.open("a") as log:
            # A process group of its own, as a terminal's foreground job: Ctrl-C is SIGINT to the whole group.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"grader serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx2.get(f"{self.url}/login", timeout=2).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"grader serve did not answer in {ready_seconds:g} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def interrupt(self) -> None:
        """Ctrl-C in the terminal it runs in: SIGINT to its process group (Ray's processes in it included)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)

    def stop(self) -> None:
        """A graceful stop (SIGTERM), SIGKILL after a grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
