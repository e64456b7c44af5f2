"""The embedded Ray's processes of a service, recorded by PID with their start times in the course folder, and ended
by PID (never by name): at a clean stop, by a reaper process once the service has ended however it ended, and at
the next start. Run as `python -m grader.service.ray_processes SERVICE_PID COURSE_DIR`, it is that reaper."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from grader.service.storage import PRIVATE_FILE

RAY_PROCESSES_FILE = "ray-processes.json"
STOP_GRACE_SECONDS = 5.0  # for Ray's agents to notice, after `ray.shutdown`, that their raylet has ended
KILLED_SECONDS = 10.0  # for a SIGKILLed process to be gone


def recorded(course_dir: Path) -> list[psutil.Process]:
    """The recorded Ray processes that still run (the same PID and start time: a reused PID is not one of them)."""
    path = course_dir / RAY_PROCESSES_FILE
    return still_running(path.read_text()) if path.exists() else []


def still_running(record: str) -> list[psutil.Process]:
    """The processes of a record (`RAY_PROCESSES_FILE`'s text) that still run."""
    processes = []
    for entry in json.loads(record):
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(entry["pid"])
            if process.create_time() == entry["started"]:
                processes.append(process)
    return processes


def record_descendants(course_dir: Path, leave_out: frozenset[int] = frozenset()) -> None:
    """Add this process's descendants (the embedded Ray's processes, workers included), but those in `leave_out`,
    with their start times to the record that `end_leftovers` reads."""
    processes = {process.pid: process for process in recorded(course_dir)}
    processes |= {process.pid: process for process in psutil.Process().children(recursive=True)}
    entries = []
    for pid, process in processes.items():
        with contextlib.suppress(psutil.Error):
            if pid not in leave_out:
                entries.append({"pid": pid, "started": process.create_time()})
    path = course_dir / RAY_PROCESSES_FILE
    path.write_text(json.dumps(entries))
    path.chmod(PRIVATE_FILE)


def end_leftovers(course_dir: Path, grace_seconds: float = 0) -> int:
    """Give the recorded Ray processes `grace_seconds` to end by themselves, then SIGKILL those still running (a
    killed service's, or the agents that outlive `ray.shutdown`) and remove the record; how many were killed."""
    path = course_dir / RAY_PROCESSES_FILE
    record = path.read_text() if path.exists() else "[]"
    _, left = psutil.wait_procs(still_running(record), timeout=grace_seconds)
    for process in left:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(left, timeout=KILLED_SECONDS)
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == record:  # not written meanwhile by a new start of the service
            path.unlink()
    return len(left)


def start_reaper(course_dir: Path) -> int:
    """Start the reaper of this service's Ray processes, in a session of its own (Ctrl-C does not reach it); its
    PID."""
    command = [sys.executable, "-m", __name__, str(psutil.Process().pid), str(course_dir)]
    return subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL).pid  # noqa: S603 - our own


def main(argv: list[str]) -> None:
    """The reaper: wait until the service ends (a clean stop, a crash of Ray's driver, or kill -9), then end the Ray
    processes it left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    service_pid, course_dir = int(argv[0]), Path(argv[1])
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(service_pid).wait()
    end_leftovers(course_dir, STOP_GRACE_SECONDS)


if __name__ == "__main__":
    main(sys.argv[1:])
