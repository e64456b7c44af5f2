"""The container the docker runner starts, read off its `docker run` command, and the grader that waits in it for
its submission (no engine needed)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.config import load_assignment
from grader.context import Device
from grader.docker_runner import deliver, docker_argv, time_limit
from grader.pipeline import GradeOptions
from grader.reports import read_report_json


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@pytest.mark.parametrize("device", [Device(), Device("cuda", 3)])
def test_the_container_is_locked_down(device: Device, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    options = GradeOptions(data_root=tmp_path / "cifar10", device=device, student_id="ann")
    argv = docker_argv(assignment, tmp_path / "inbox", tmp_path / "out", options, "grader-test")
    limits = assignment.limits
    assert argv[:2] == ["docker", "run"] and "--read-only" in argv and "--privileged" not in argv
    assert option_values(argv, "--network") == ["none"]
    assert option_values(argv, "--label") == ["grader.runner=docker"]
    assert option_values(argv, "--pids-limit") == [str(limits.processes + 64)]
    assert option_values(argv, "--cpus") == [str(limits.threads)]
    assert option_values(argv, "--memory") == [f"{limits.memory_mb + limits.grader_memory_mb}m"]
    assert option_values(argv, "--security-opt") == ["seccomp=unconfined", "apparmor=unconfined",
                                                     "systempaths=unconfined"]
    volumes = option_values(argv, "-v")
    assert f"{(tmp_path / 'inbox').resolve()}:/submission:ro" in volumes
    assert f"{tmp_path / 'cifar10'}:/data/cifar10:ro" in volumes
    writable = [v for v in volumes if not v.endswith(":ro")]
    assert writable == [f"{(tmp_path / 'out').resolve()}:/out"], "the report folder is the only writable mount"
    assert all(option.startswith(("/tmp:", "/home/grader:", "/cache:")) for option in option_values(argv, "--tmpfs"))
    assert option_values(argv, "--gpus") == ([] if device.kind == "cpu" else ["device=3"])
    assert argv[argv.index("grade") - 1] == "grader:latest"
    waits = 2 * time_limit(assignment, device.kind)  # the host hands it no submission after half of that
    assert argv[argv.index("grade"):] == ["grade", "a2_ffn", "/submission", "--out", "/out", "--device", device.kind,
                                          "--quiet", "--wait-for-delivery", f"{waits:g}"]


def test_the_host_stops_the_container_at_the_sum_of_the_stage_limits() -> None:
    # start-up 60 + import 30 + checks 120 + verdicts 60 + training + evaluation 120
    assignment = load_assignment("a2_ffn")
    # training: budget 180 + grace 30 + the validation passes' share 0.25 x 180, times the wall safety factor 5
    assert time_limit(assignment, "cpu") == 60 + 30 + 120 + 60 + (180 + 30 + 45) * 5 + 120
    assert time_limit(assignment, "cuda") == 60 + 30 + 120 + 60 + (60 + 30 + 15) + 120
    assert time_limit(load_assignment("a1_dataset"), "cpu") == 60 + 60 + 600 + 60


def run_cli(*args: str) -> subprocess.Popen:
    grader = Path(sys.executable).parent / "grader"
    return subprocess.Popen([str(grader), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_waiting_grader_grades_what_is_delivered_as_whom(tmp_path: Path, synthetic_cifar: Path) -> None:
    # What runs in the container, run here: the grader waits, the host delivers a submission and its student.
    inbox, out, source = tmp_path / "inbox", tmp_path / "out", tmp_path / "mine.py"
    inbox.mkdir()
    source.write_text("raise ValueError('broken on purpose')\n")
    waiting = run_cli("grade", "a2_ffn", str(inbox), "--out", str(out), "--data-dir", str(synthetic_cifar), "--quiet",
                      "--wait-for-delivery", "60")
    time.sleep(1)
    assert waiting.poll() is None, "it waits for the delivery"
    deliver(inbox, source, "ann")
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, stderr
    report = read_report_json(out / "report.json")
    assert (report.submission.student_id, report.submission.source) == ("ann", "mine.py")
    assert "broken on purpose" in report.failures[0].message


def test_a_waiting_grader_nobody_delivers_to_ends_with_a_sentence(tmp_path: Path, synthetic_cifar: Path) -> None:
    (tmp_path / "inbox").mkdir()
    waiting = run_cli("grade", "a2_ffn", str(tmp_path / "inbox"), "--out", str(tmp_path / "out"), "--data-dir",
                      str(synthetic_cifar), "--quiet", "--wait-for-delivery", "0.5")
    _, stderr = waiting.communicate(timeout=120)
    assert waiting.returncode == 2
    assert "No submission was delivered to this container within 0.5 s." in stderr, stderr
