"""What every request handler reaches through FastAPI's dependencies: the settings, the course, the database
and the job loop of the one running service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from grader.course import Course
from grader.service.settings import ServiceSettings

if TYPE_CHECKING:
    from grader.service.dispatch import JobLoop


@dataclass
class ServiceContext:
    settings: ServiceSettings
    course: Course
    sessions: sessionmaker[Session]
    jobs: JobLoop | None  # None while grading is held back

    def wake_jobs(self) -> None:
        """Tell the job loop that gradings were queued."""
        if self.jobs is not None:
            self.jobs.wake()


def service(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.service
    return context


def database(request: Request) -> Iterator[Session]:
    with service(request).sessions() as db:
        yield db


Service = Annotated[ServiceContext, Depends(service)]
Database = Annotated[Session, Depends(database)]
