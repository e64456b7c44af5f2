"""The docker tier: a reachable engine and the grader image, built for real (never mocked)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from grader.docker_runner import image

REPOSITORY = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/docker/" in item.nodeid:
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """An answering Docker engine; without one the tier skips locally and fails under CI=true."""
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        reason = "no Docker engine is reachable (scripts/docker-engine.sh start starts one)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def grader_image(docker_engine: None) -> str:
    """The grader image, built from this checkout (layers cached between runs on one machine)."""
    build = subprocess.run([str(REPOSITORY / "scripts" / "docker-engine.sh"), "build"],
                           capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return image()
