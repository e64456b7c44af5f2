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


def service(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.service
    return context


def database(request: Request) -> Iterator[Session]:
    with service(request).sessions() as db:
        yield db


Service = Annotated[ServiceContext, Depends(service)]
Database = Annotated[Session, Depends(database)]
