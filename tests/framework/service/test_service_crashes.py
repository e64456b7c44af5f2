"""Clean crashes and starts: the server answers at once and says the grading cluster is starting; a grading whose
Ray worker was killed says it is retrying; after SIGKILL of the service no Ray process of it survives the next start,
and what a SIGTERM stop leaves is recorded for the next start to end."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import psutil
import pytest
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, ServiceProcess, make_course_dir
from test_service_durability import end_leftovers, wait_for

from grader.service import grading_cluster
from grader.service.grading_cluster import RAY_PROCESSES_FILE

pytestmark = [pytest.mark.service, pytest.mark.slow]
STARTING = "Starting the grading cluster"
READY_SECONDS = 240  # Ray's start on a loaded 2-core machine
SOURCE = (EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py").read_bytes()


def cluster_ready(service: ServiceProcess) -> bool:
    return STARTING not in httpx2.get(f"{service.url}/login", timeout=30).text


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (psutil compares start times, so a reused PID is not one of them)."""
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def grading_worker(service: ServiceProcess) -> psutil.Process | None:
    for process in psutil.Process(service.process.pid).children(recursive=True):
        try:
            if process.cmdline()[:1] == ["ray::grade_on_node"] or process.name().startswith("ray::grade_on"):
                return process
        except psutil.Error:
            continue
    return None


def test_kill_9_of_the_service_and_of_a_worker_leave_no_ray_process(tmp_path: Path, synthetic_cifar: Path) -> None:
    course_dir = tmp_path / "course"
    _, tokens = make_course_dir(course_dir, None, {A1: {}})
    env = {"GRADER_DATA_DIR": str(synthetic_cifar)}
    first = ServiceProcess(course_dir, cluster="local", extra_env=env)
    first.start()
    descendants: list[psutil.Process] = []
    try:
        assert STARTING in httpx2.get(f"{first.url}/login", timeout=30).text  # answers before Ray is ready
        wait_for(lambda: cluster_ready(first), READY_SECONDS, "the grading cluster starting", first.log)
        student = {"Authorization": f"Bearer {tokens['s1']}"}
        submitted = httpx2.post(f"{first.url}/api/assignments/{A1}/submissions", headers=student, timeout=60,
                                files={"file": ("cifar_dataset.py", SOURCE)})
        assert submitted.status_code == 201, submitted.text
        url = f"{first.url}/api/submissions/{submitted.json()['id']}"
        def grading() -> bool:  # a stage under way (the task has started), in a worker that can be killed
            state = httpx2.get(url, headers=student, timeout=30).json()["state"]
            return state == "running" and grading_worker(first) is not None

        wait_for(grading, READY_SECONDS, "a grading worker", first.log)
        grading_worker(first).kill()
        stages: list[str] = []

        def retried() -> bool:
            stages.append(httpx2.get(url, headers=student, timeout=30).json()["stage"])
            return stages[-1].startswith("retrying (attempt 2 of 3)") or stages[-1] == "graded"

        wait_for(retried, READY_SECONDS, "the retry", first.log)
        assert any(stage.startswith("retrying (attempt 2 of 3)") for stage in stages), stages
        descendants = psutil.Process(first.process.pid).children(recursive=True)
        assert descendants
        first.kill()
    finally:
        first.stop()
    time.sleep(5)  # what dies with the service has died
    survivors = running(descendants)

    second = ServiceProcess(course_dir, cluster="local", extra_env=env)
    second.start()
    started: list[psutil.Process] = []
    try:
        wait_for(lambda: cluster_ready(second), READY_SECONDS, "the second start's cluster", second.log)
        assert running(descendants) == [], f"left by the killed service: {survivors}"
        started = psutil.Process(second.process.pid).children(recursive=True)
    finally:
        second.stop()
        end_leftovers(descendants)
    # Ray's own SIGTERM handler may end the process before the shutdown has ended its agents: the record stays
    # for the next start, which ends them by PID as it did above.
    if running(started):
        assert (course_dir / RAY_PROCESSES_FILE).exists()
        grading_cluster.end_leftovers(course_dir)
    assert running(started) == []
