"""The container the docker runner starts, read off its `docker run` command (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.config import load_assignment
from grader.context import Device
from grader.docker_runner import GRADER_MEMORY_MB, docker_argv, time_limit
from grader.pipeline import GradeOptions


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@pytest.mark.parametrize("device", [Device(), Device("cuda", 3)])
def test_the_container_is_locked_down(device: Device, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    source = tmp_path / "ffn.py"
    options = GradeOptions(data_root=tmp_path / "cifar10", device=device, student_id="ann")
    argv = docker_argv(assignment, source, tmp_path / "out", options, "grader-test")
    limits = assignment.limits
    assert argv[:2] == ["docker", "run"] and "--read-only" in argv and "--privileged" not in argv
    assert option_values(argv, "--network") == ["none"]
    assert option_values(argv, "--pids-limit") == [str(limits.processes + 64)]
    assert option_values(argv, "--cpus") == [str(limits.threads)]
    assert option_values(argv, "--memory") == [f"{limits.memory_mb + GRADER_MEMORY_MB}m"]
    assert option_values(argv, "--security-opt") == ["seccomp=unconfined", "apparmor=unconfined",
                                                     "systempaths=unconfined"]
    volumes = option_values(argv, "-v")
    assert f"{source.resolve()}:/submission/ffn.py:ro" in volumes
    assert f"{tmp_path / 'cifar10'}:/data/cifar10:ro" in volumes
    writable = [v for v in volumes if not v.endswith(":ro")]
    assert writable == [f"{(tmp_path / 'out').resolve()}:/out"], "the report folder is the only writable mount"
    assert all(option.startswith(("/tmp:", "/home/grader:", "/cache:")) for option in option_values(argv, "--tmpfs"))
    assert option_values(argv, "--gpus") == ([] if device.kind == "cpu" else ["device=3"])
    assert argv[argv.index("grade") - 1] == "grader:latest"
    assert argv[argv.index("grade"):] == ["grade", "a2_ffn", "/submission/ffn.py", "--out", "/out", "--id", "ann",
                                          "--device", device.kind, "--quiet"]


def test_the_host_stops_the_container_at_the_sum_of_the_stage_limits() -> None:
    # start-up 60 + import 30 + checks 120 + verdicts 60 + training + evaluation 120
    assignment = load_assignment("a2_ffn")
    assert time_limit(assignment, "cpu") == 60 + 30 + 120 + 60 + (180 + 30) * 5 + 120
    assert time_limit(assignment, "cuda") == 60 + 30 + 120 + 60 + (60 + 30) + 120
    assert time_limit(load_assignment("a1_dataset"), "cpu") == 60 + 60 + 600 + 60
