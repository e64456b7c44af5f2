"""The service's grading cluster, started in the background so that the web server listens at once (the pages say
"starting the grading cluster" until Ray is ready). An embedded Ray's processes are recorded by PID (with their
start times) in the course folder; a start after a killed service ends those still running, never by name."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from typing import TYPE_CHECKING

import psutil

from grader.errors import GraderError
from grader.service.dispatch import JobLoop
from grader.service.storage import PRIVATE_FILE

if TYPE_CHECKING:
    from pathlib import Path

    from grader.cluster import Dispatcher
    from grader.service.context import ServiceContext

RAY_PROCESSES_FILE = "ray-processes.json"
STOP_GRACE_SECONDS = 5.0  # for Ray's agents to notice, after `ray.shutdown`, that their raylet has ended
KILLED_SECONDS = 10.0  # for a SIGKILLed process to be gone


class GradingCluster:
    """Connects the dispatcher and runs the job loop on a thread of its own, which lives until `stop`: Ray's
    processes get PR_SET_PDEATHSIG, which fires when the thread that started them ends."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context
        self.problem: str | None = None  # why the cluster could not start, in one sentence
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grader-cluster", daemon=True)

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
            record_descendants(settings.course_dir)  # the workers and agents Ray started since its start
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
        jobs = JobLoop(settings, self.context.current_course, self.context.sessions, dispatcher)
        jobs.start()
        self.context.jobs = jobs
        self._ready.set()
        return dispatcher


def recorded(course_dir: Path) -> list[psutil.Process]:
    """The recorded Ray processes that still run (the same PID and start time: a reused PID is not one of them)."""
    path = course_dir / RAY_PROCESSES_FILE
    if not path.exists():
        return []
    processes = []
    for entry in json.loads(path.read_text()):
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(entry["pid"])
            if process.create_time() == entry["started"]:
                processes.append(process)
    return processes


def record_descendants(course_dir: Path) -> None:
    """Add this process's descendants (the embedded Ray's processes, workers included) with their start times to
    the record that `end_leftovers` reads."""
    processes = {process.pid: process for process in recorded(course_dir)}
    processes |= {process.pid: process for process in psutil.Process().children(recursive=True)}
    entries = []
    for process in processes.values():
        with contextlib.suppress(psutil.Error):
            entries.append({"pid": process.pid, "started": process.create_time()})
    path = course_dir / RAY_PROCESSES_FILE
    path.write_text(json.dumps(entries))
    path.chmod(PRIVATE_FILE)


def end_leftovers(course_dir: Path, grace_seconds: float = 0) -> int:
    """Give the recorded Ray processes `grace_seconds` to end by themselves, then SIGKILL those still running (a
    killed service's, or the agents that outlive `ray.shutdown`) and remove the record; how many were killed."""
    _, left = psutil.wait_procs(recorded(course_dir), timeout=grace_seconds)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=KILLED_SECONDS)
    (course_dir / RAY_PROCESSES_FILE).unlink(missing_ok=True)
    return len(left)
