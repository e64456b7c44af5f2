"""The embedded Ray's processes are ended by PID and start time: at a stop, by the reaper once the service has ended
however it ended, and never a process whose PID was reused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from grader.service.ray_processes import (
    KILLED_SECONDS,
    RAY_PROCESSES_FILE,
    STOP_GRACE_SECONDS,
    end_leftovers,
    record_descendants,
    recorded,
)

pytestmark = pytest.mark.service


def sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "600"])


def test_recorded_processes_are_ended_by_pid_and_a_reused_pid_is_spared(tmp_path: Path) -> None:
    ray_like = sleeper()
    watched = psutil.Process(ray_like.pid)
    try:
        record_descendants(tmp_path)
        assert ray_like.pid in {process.pid for process in recorded(tmp_path)}
        record = json.loads((tmp_path / RAY_PROCESSES_FILE).read_text())
        this = psutil.Process()
        record.append({"pid": this.pid, "started": this.create_time() - 1})  # this PID, another process's start
        (tmp_path / RAY_PROCESSES_FILE).write_text(json.dumps(record))
        assert this.pid not in {process.pid for process in recorded(tmp_path)}
        assert end_leftovers(tmp_path) >= 1  # it waits for (and so reaps) what it killed
        assert not watched.is_running() and this.is_running()
        assert not (tmp_path / RAY_PROCESSES_FILE).exists()
    finally:
        ray_like.kill()
        ray_like.wait()


def test_the_reaper_ends_the_recorded_processes_once_the_service_has_ended(tmp_path: Path) -> None:
    service, ray_like = sleeper(), sleeper()
    try:
        started = psutil.Process(ray_like.pid).create_time()
        (tmp_path / RAY_PROCESSES_FILE).write_text(json.dumps([{"pid": ray_like.pid, "started": started}]))
        reaper = subprocess.Popen([sys.executable, "-m", "grader.service.ray_processes", str(service.pid),
                                   str(tmp_path)])
        with pytest.raises(subprocess.TimeoutExpired):
            reaper.wait(timeout=2)  # it waits while the service runs
        assert ray_like.poll() is None
        service.kill()
        service.wait()
        assert reaper.wait(timeout=STOP_GRACE_SECONDS + KILLED_SECONDS + 30) == 0
        assert ray_like.wait(timeout=KILLED_SECONDS) == -9
        assert not (tmp_path / RAY_PROCESSES_FILE).exists()
    finally:
        for process in (service, ray_like):
            process.kill()
            process.wait()
