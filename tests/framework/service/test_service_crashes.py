"""Clean crashes and starts: the server answers at once and says the grading cluster is starting; a grading whose
Ray worker was killed says it is retrying as soon as the worker is gone; after SIGKILL of the service no Ray process
of it survives the next start, and after SIGTERM or Ctrl-C none survives the stop."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2
import psutil
import pytest
from service_harness import A1, EXAMPLES, EXAMPLES_DIR, ServiceProcess, make_course_dir
from sqlalchemy import select
from test_service_durability import end_leftovers, wait_for

from grader.cluster import WAITING_FOR_RETRY
from grader.service.db import open_database
from grader.service.ray_processes import KILLED_SECONDS, RAY_PROCESSES_FILE, STOP_GRACE_SECONDS, recorded
from grader.service.settings import ServiceSettings
from grader.service.tables import GradingStage

pytestmark = [pytest.mark.service, pytest.mark.slow]
STARTING = "Starting the grading cluster"
READY_SECONDS = 240  # Ray's start on a loaded 2-core machine
STOP_SECONDS = 120  # a clean stop: the job loop, Ray's shutdown and its agents' end
SOURCE = (EXAMPLES_DIR / A1 / EXAMPLES["full"] / "cifar_dataset.py").read_bytes()


def cluster_ready(service: ServiceProcess) -> bool:
    return STARTING not in httpx2.get(f"{service.url}/login", timeout=30).text


def running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (psutil compares start times, so a reused PID is not one of them)."""
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def left_after_the_stop(processes: list[psutil.Process]) -> list[str]:
    """Those still running once the stop's grace and the reaper's are over (each ended here, by PID)."""
    _, alive = psutil.wait_procs(processes, timeout=STOP_GRACE_SECONDS + KILLED_SECONDS)
    left = described(running(alive))
    end_leftovers(alive)
    return left


def described(processes: list[psutil.Process]) -> list[str]:
    """Each process's PID and command line (for a failure's message)."""
    out = []
    for process in processes:
        try:
            out.append(f"{process.pid} {' '.join(process.cmdline())[:120]}")
        except psutil.Error:
            out.append(f"{process.pid} (gone)")
    return out


def grading_worker(service: ServiceProcess) -> psutil.Process | None:
    for process in psutil.Process(service.process.pid).children(recursive=True):
        try:
            if process.cmdline()[:1] == ["ray::grade_on_node"] or process.name().startswith("ray::grade_on"):
                return process
        except psutil.Error:
            continue
    return None


def stages_of(settings: ServiceSettings) -> list[str]:
    """Every stage the service recorded for its gradings, in order."""
    with open_database(settings.database)() as db:
        return list(db.scalars(select(GradingStage.stage).order_by(GradingStage.id)))


def start_grading(service: ServiceProcess, token: str) -> str:
    """Upload a1 once the cluster is ready and wait until a worker grades it; the submission's API URL."""
    wait_for(lambda: cluster_ready(service), READY_SECONDS, "the grading cluster starting", service.log)
    student, url = {"Authorization": f"Bearer {token}"}, upload(service, token)

    def grading() -> bool:  # a stage under way (the task has started), in a worker that can be killed
        state = httpx2.get(url, headers=student, timeout=30).json()["state"]
        return state == "running" and grading_worker(service) is not None

    wait_for(grading, READY_SECONDS, "a grading worker", service.log)
    return url


def test_kill_9_of_the_service_and_of_a_worker_leave_no_ray_process(tmp_path: Path, synthetic_cifar: Path) -> None:
    course_dir = tmp_path / "course"
    settings, tokens = make_course_dir(course_dir, None, {A1: {}})
    env = {"GRADER_DATA_DIR": str(synthetic_cifar)}
    first = ServiceProcess(course_dir, cluster="local", extra_env=env)
    first.start()
    descendants: list[psutil.Process] = []
    try:
        assert STARTING in httpx2.get(f"{first.url}/login", timeout=30).text  # answers before Ray is ready
        url, student = start_grading(first, tokens["s1"]), {"Authorization": f"Bearer {tokens['s1']}"}
        grading_worker(first).kill()
        stages: list[str] = []

        def retried() -> bool:
            stages.append(httpx2.get(url, headers=student, timeout=30).json()["stage"])
            return stages[-1].startswith("retrying (attempt 2 of 3)") or stages[-1] == "graded"

        wait_for(retried, READY_SECONDS, "the retry", first.log)
        assert any(stage.startswith("retrying (attempt 2 of 3)") for stage in stages), stages
        wait_for(lambda: "retrying (attempt 2 of 3): started" in stages_of(settings), READY_SECONDS, "the second try",
                 first.log)
        recorded_stages = stages_of(settings)  # the lost try is said before Ray starts the next
        lost = recorded_stages.index(f"retrying (attempt 2 of 3): {WAITING_FOR_RETRY}")
        assert lost < recorded_stages.index("retrying (attempt 2 of 3): started"), recorded_stages
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
    finally:
        started = psutil.Process(second.process.pid).children(recursive=True)
        second.stop()
        end_leftovers(descendants)
    left = left_after_the_stop(started)
    assert left == [], f"a SIGTERM stop left {left}; the service said:\n{second.log.read_text()[-3000:]}"


def upload(service: ServiceProcess, token: str) -> str:
    """Hand in a1 (queued while the cluster starts); the submission's API URL."""
    submitted = httpx2.post(f"{service.url}/api/assignments/{A1}/submissions", timeout=60,
                            headers={"Authorization": f"Bearer {token}"}, files={"file": ("cifar_dataset.py", SOURCE)})
    assert submitted.status_code == 201, submitted.text
    return f"{service.url}/api/submissions/{submitted.json()['id']}"


# SIGTERM as the cluster takes its first grading: Ray's driver may then abort the service inside `ray.shutdown`
# (SIGABRT), before the stop has ended Ray's agents and the new worker; the reaper ends them.
@pytest.mark.parametrize("how", ["SIGTERM as a grading is dispatched", "Ctrl-C during a grading"])
def test_sigterm_or_ctrl_c_leaves_no_ray_process(how: str, tmp_path: Path, synthetic_cifar: Path) -> None:
    course_dir = tmp_path / "course"
    _, tokens = make_course_dir(course_dir, None, {A1: {}})
    service = ServiceProcess(course_dir, cluster="local", extra_env={"GRADER_DATA_DIR": str(synthetic_cifar)})
    service.start()
    ours: list[psutil.Process] = []
    try:
        if how.startswith("SIGTERM"):
            upload(service, tokens["s1"])
            wait_for(lambda: cluster_ready(service), READY_SECONDS, "the grading cluster starting", service.log)
            ours = psutil.Process(service.process.pid).children(recursive=True) + recorded(course_dir)
            os.kill(service.process.pid, signal.SIGTERM)
        else:
            start_grading(service, tokens["s1"])
            ours = psutil.Process(service.process.pid).children(recursive=True) + recorded(course_dir)
            service.interrupt()
        assert len(ours) > 2  # Ray's processes and the reaper
        assert service.process.wait(timeout=STOP_SECONDS) != -signal.SIGKILL
    finally:
        service.stop()
    left = left_after_the_stop(ours)
    assert left == [], f"{how} left {left}; the service said:\n{service.log.read_text()[-3000:]}"
    assert not (course_dir / RAY_PROCESSES_FILE).exists(), "a clean stop leaves no record for the next start"
    assert "Traceback" not in service.log.read_text()
