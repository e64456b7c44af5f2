"""What every request handler reaches through FastAPI's dependencies: the settings, the course (reread when
course.toml changes), the database and the job loop of the one running service."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from grader.course import COURSE_FILE, Course, load_course
from grader.errors import GraderError
from grader.service.settings import ServiceSettings

STARTING = "Starting the grading cluster: uploads are accepted and queued, and grading begins once it is ready."

if TYPE_CHECKING:
    from grader.service.dispatch import JobLoop
    from grader.service.grading_cluster import GradingCluster


@dataclass
class ServiceContext:
    settings: ServiceSettings
    course: Course
    sessions: sessionmaker[Session]
    jobs: JobLoop | None  # None while grading is held back or the cluster is starting
    cluster: GradingCluster | None = None  # None: grading held back
    course_problem: str | None = None  # why the edited course.toml was not taken, in one sentence
    _course_stamp: tuple[int, int, int] | None = field(init=False, default=None)
    _course_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._course_stamp = course_stamp(self.settings.course_dir)

    def current_course(self) -> Course:
        """The course, reread first when course.toml changed since it was read; an invalid edit keeps the last
        valid course, and says why on stderr and in `course_problem`."""
        stamp = course_stamp(self.settings.course_dir)
        if stamp == self._course_stamp:
            return self.course
        with self._course_lock:
            if stamp != self._course_stamp:
                self._course_stamp = stamp
                self._reread_course()
        return self.course

    def _reread_course(self) -> None:
        try:
            self.course, self.course_problem = load_course(self.settings.course_dir), None
        except GraderError as exc:
            self.course_problem = (f"The edited {COURSE_FILE} was not taken, so the service keeps its last valid "
                                   f"version: {exc}")
            print(f"grader serve: {self.course_problem}", file=sys.stderr)

    @property
    def cluster_note(self) -> str | None:
        """What every page says while the grading cluster starts, or why it could not."""
        if self.cluster is None:
            return None
        if self.cluster.starting:
            return STARTING
        return self.cluster.problem

    def wake_jobs(self) -> None:
        """Tell the job loop that gradings were queued."""
        if self.jobs is not None:
            self.jobs.wake()


def course_stamp(course_dir: Path) -> tuple[int, int, int] | None:
    """What changes when course.toml is edited or replaced: its modification time, size and inode (None: gone)."""
    try:
        stat = (course_dir / COURSE_FILE).stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


def service(request: Request) -> ServiceContext:
    """The running service, its course as course.toml now says."""
    context: ServiceContext = request.app.state.service
    context.current_course()
    return context


def database(request: Request) -> Iterator[Session]:
    with service(request).sessions() as db:
        yield db


Service = Annotated[ServiceContext, Depends(service)]
Database = Annotated[Session, Depends(database)]
