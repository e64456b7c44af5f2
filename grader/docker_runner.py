"""Docker runner: grade one submission in its own container, with the same stages inside.

The container gets no network, a read-only root with tmpfs scratch space, memory, process and
CPU limits, one GPU when the worker has one, the submission and data read-only, and the report
folder as its only writable mount. The host stops a container at its time limit and still
writes a report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from grader.checks import VERDICT_SECONDS
from grader.config import Assignment
from grader.data import SPLITS, cache_dir, load_split
from grader.errors import GraderError
from grader.files import trim
from grader.models import Failure, FailureKind, Report
from grader.pipeline import GradeOptions, failed_report
from grader.reports import read_report_json, write_all

IMAGE_ENV = "GRADER_IMAGE"
DEFAULT_IMAGE = "grader:latest"
CONTAINER_DATA = "/data/cifar10"
CONTAINER_CACHE = "/cache"
GRADER_MEMORY_MB = 2048  # the grader's own process inside the container, on top of the stage limit
STARTUP_SECONDS = 60  # container start, intake, data loading and report rendering
# bubblewrap inside the container needs to create namespaces, which Docker's default profiles forbid.
SANDBOX_OPTIONS = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                   "--security-opt", "systempaths=unconfined"]


def image() -> str:
    return os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)


def time_limit(assignment: Assignment, device_kind: str) -> float:
    """Every stage's own wall-clock limit added up, plus start-up: past this the container is stopped."""
    limits = assignment.limits
    seconds = STARTUP_SECONDS + limits.import_seconds + limits.checks_total_seconds + VERDICT_SECONDS
    if assignment.training is not None:
        seconds += assignment.training.wall_limit(device_kind) + limits.eval_seconds
    return seconds


def docker_argv(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions, name: str) -> list[str]:
    """The `docker run` command that grades `source` into `out_dir`."""
    limits = assignment.limits
    argv = [
        "docker", "run", "--name", name, "--network", "none", "--read-only",
        "--tmpfs", f"/tmp:rw,exec,size={limits.file_size_mb * 2 + 512}m",
        "--tmpfs", "/home/grader:rw,size=64m",
        "--tmpfs", f"{CONTAINER_CACHE}:rw,size=64m",
        "--memory", f"{limits.memory_mb + GRADER_MEMORY_MB}m",
        "--pids-limit", str(limits.processes + 64),
        "--cpus", str(limits.threads),
        *(["--user", f"{os.getuid()}:{os.getgid()}"] if os.getuid() != 0 else []),
        *SANDBOX_OPTIONS,
        "-v", f"{source.resolve()}:/submission/{source.name}:ro",
        "-v", f"{out_dir.resolve()}:/out",
    ]
    if options.data_root is not None:
        # The decoded tensors too, so no container decodes the images again (grade_in_container fills them).
        argv += ["-v", f"{options.data_root}:{CONTAINER_DATA}:ro",
                 "-v", f"{(cache_dir() / 'tensors').resolve()}:{CONTAINER_CACHE}/tensors:ro"]
    if options.device.kind == "cuda":
        argv += ["--gpus", f"device={options.device.gpu_index}"]
    argv += [image(), "grade", assignment.id, f"/submission/{source.name}", "--out", "/out",
             "--id", options.student_id or source.stem, "--device", options.device.kind, "--quiet"]
    return argv


def grade_in_container(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """Grade in a fresh container; the report comes back through the out mount, or is written here."""
    if shutil.which("docker") is None:
        raise GraderError("--runner docker needs the docker command, which is not installed.")
    if options.data_root is not None:
        for split in SPLITS:
            load_split(options.data_root, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        out_dir.chmod(0o777)  # the image's unprivileged user writes the reports
    (out_dir / "report.json").unlink(missing_ok=True)
    name = f"grader-{uuid.uuid4().hex[:12]}"
    limit = time_limit(assignment, options.device.kind)
    options.status("container")
    try:
        completed = subprocess.run(docker_argv(assignment, source, out_dir, options, name),
                                   capture_output=True, text=True, timeout=limit)
        problem = _container_problem(name, completed)
    except subprocess.TimeoutExpired:
        problem = Failure(stage="container", kind=FailureKind.TIMEOUT,
                          message=f"Grading took longer than {limit:g} s in total, so its container was stopped.")
    finally:
        subprocess.run(["docker", "rm", "--force", name], capture_output=True)
    report_path = out_dir / "report.json"
    if report_path.is_file():
        return read_report_json(report_path)
    report = failed_report(assignment, source, options.student_id or source.stem, problem)
    report.environment.runner = "docker"
    write_all(report, assignment, out_dir)
    return report


def _container_problem(name: str, completed: subprocess.CompletedProcess) -> Failure:
    """Why a container that ended left no report: out of memory, an engine error, or a crash."""
    inspect = subprocess.run(["docker", "inspect", "--format", "{{.State.OOMKilled}}", name],
                             capture_output=True, text=True)
    details = trim(completed.stdout + completed.stderr)
    if inspect.stdout.strip() == "true":
        return Failure(stage="container", kind=FailureKind.OUT_OF_MEMORY, details=details,
                       message="Grading ran out of memory in its container, which was stopped.")
    if completed.returncode == 125:
        raise GraderError(f"docker could not start the grading container: {completed.stderr.strip()[-300:]}")
    return Failure(stage="container", kind=FailureKind.CRASH, details=details,
                   message=f"The grading container exited with code {completed.returncode} without a report.")
