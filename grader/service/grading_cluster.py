"""The service's grading cluster, started in the background so that the web server listens at once (the pages say
"starting the grading cluster" until Ray is ready). An embedded Ray's processes are recorded and ended by PID
(grader.service.ray_processes)."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING

from grader.errors import GraderError
from grader.service.dispatch import JobLoop
from grader.service.ray_processes import STOP_GRACE_SECONDS, end_leftovers, record_descendants, start_reaper

if TYPE_CHECKING:
    from grader.cluster import Dispatcher
    from grader.service.context import ServiceContext


class GradingCluster:
    """Connects the dispatcher and runs the job loop on a thread of its own, which lives until `stop`: Ray's
    processes get PR_SET_PDEATHSIG, which fires when the thread that started them ends."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.problem: str | None = None  # why the cluster could not start, in one sentence
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grader-cluster", daemon=True)
        self._reaper: frozenset[int] = frozenset()  # the reaper's PID, left out of the record

    @property
    def starting(self) -> bool:
        return not self._ready.is_set() and self.problem is None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching and disconnect (an embedded Ray ends); waits for a start under way first."""
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        dispatcher = self._start()
        if dispatcher is None:
            return
        self._stopping.wait()
        if self.context.jobs is not None:
            self.context.jobs.stop()
        settings = self.context.settings
        if settings.cluster == "local":
            record_descendants(settings.course_dir, self._reaper)  # the workers and agents Ray started since
        dispatcher.close()
        end_leftovers(settings.course_dir, STOP_GRACE_SECONDS)  # Ray's agents outlive `ray.shutdown` a while

    def _start(self) -> Dispatcher | None:
        from grader.cluster import Dispatcher  # Ray is imported only by a service that grades

        settings = self.context.settings
        assert settings.cluster is not None  # noqa: S101 - only a grading service starts a cluster
        end_leftovers(settings.course_dir)
        try:
            dispatcher = Dispatcher(settings.cluster, settings.data_root, settings.device_kind)
        except GraderError as exc:
            self.problem = f"The grading cluster could not start: {exc}"
            print(self.problem, file=sys.stderr)
            return None
        if settings.cluster == "local":
            record_descendants(settings.course_dir)
            # Ray's driver may abort the service in `ray.shutdown`, or it may be killed: the reaper ends what is left.
            self._reaper = frozenset({start_reaper(settings.course_dir)})
        jobs = JobLoop(settings, self.context.current_course, self.context.sessions, dispatcher)
        jobs.start()
        self.context.jobs = jobs
        self._ready.set()
        return dispatcher
