"""Docker runner: grade one submission in its own container, with the same stages inside.

The container gets no network, a read-only root with tmpfs scratch space, memory, process and
CPU limits, one GPU when the worker has one, its inbox (the submission), the data and the course root's
public files and the assignment's hidden checks (never its solutions) read-only, and its own report
folder as its only writable mount. The image holds the engine only: editing a course needs no rebuild.
The host stops a container at its time limit and still writes a report.

A container starts before its submission is known: it starts the grader, loads the data and
starts its warm sandbox, then waits for the host to deliver a submission into its inbox. A batch
starts the next submission's container while the current one grades, so only the grading remains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from grader.checks import VERDICT_SECONDS
from grader.config import Assignment, DeviceKind
from grader.context import Device, load_grading_data
from grader.data import cache_dir
from grader.errors import GraderError
from grader.files import trim, write_atomic
from grader.models import Failure, FailureKind, Report
from grader.paths import COURSE_ROOT_ENV, assignments_dir
from grader.pipeline import GradeOptions, write_failed_report
from grader.reports import REPORT_JSON, install_report_folder
from grader.spares import Spares

IMAGE_ENV = "GRADER_IMAGE"
DEFAULT_IMAGE = "grader:latest"
CONTAINER_DATA = "/data/cifar10"
CONTAINER_CACHE = "/cache"
CONTAINER_INBOX = "/submission"
CONTAINER_COURSE = "/mnt/course"  # the host's course root, mounted over nothing the image holds
DELIVERY_FILE = "delivery.json"
CONTAINER_LABEL = "grader.runner=docker"  # to find what a grader killed mid-batch left: docker ps -a --filter label=
STARTUP_SECONDS = 60  # container start, intake, data loading and report rendering
# bubblewrap inside the container needs to create namespaces, which Docker's default profiles forbid.
SANDBOX_OPTIONS = ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                   "--security-opt", "systempaths=unconfined"]


class Delivery(BaseModel):
    """What the host hands a waiting container: which entry of its inbox to grade, and for whom."""

    source: str
    student_id: str


def image() -> str:
    return os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)


def time_limit(assignment: Assignment, device_kind: DeviceKind) -> float:
    """Every stage's own wall-clock limit added up, plus start-up: past this the container is stopped."""
    limits = assignment.limits
    seconds = STARTUP_SECONDS + limits.import_seconds + limits.checks_total_seconds + VERDICT_SECONDS
    if assignment.training is not None:
        seconds += assignment.training.wall_limit(device_kind) + limits.eval_seconds
    return seconds


def docker_argv(assignment: Assignment, inbox: Path, out_dir: Path, options: GradeOptions, name: str) -> list[str]:
    """The `docker run` command of a container that grades what the host delivers into `inbox`, into `out_dir`."""
    limits = assignment.limits
    argv = [
        "docker", "run", "--name", name, "--label", CONTAINER_LABEL, "--network", "none", "--read-only",
        "--tmpfs", f"/tmp:rw,exec,size={limits.file_size_mb * 2 + 512}m",
        "--tmpfs", "/home/grader:rw,size=64m",
        "--tmpfs", f"{CONTAINER_CACHE}:rw,size=64m",
        "--memory", f"{limits.runner_memory_mb}m",
        "--pids-limit", str(limits.processes + 64),
        "--cpus", str(limits.threads),
        *(["--user", f"{os.getuid()}:{os.getgid()}"] if os.getuid() != 0 else []),
        *SANDBOX_OPTIONS,
        "-v", f"{inbox.resolve()}:{CONTAINER_INBOX}:ro",
        "-v", f"{out_dir.resolve()}:/out",
        *course_mounts(assignment),
    ]
    if options.data_root is not None:
        # The decoded tensors too, so no container decodes the images again (grade_in_container fills them).
        argv += ["-v", f"{options.data_root}:{CONTAINER_DATA}:ro",
                 "-v", f"{(cache_dir() / 'tensors').resolve()}:{CONTAINER_CACHE}/tensors:ro"]
    if options.device.kind == "cuda":
        argv += ["--gpus", f"device={options.device.gpu_index}"]
    # A container nobody delivers to (its batch was killed) ends itself; the host uses none older than half this.
    argv += [image(), "grade", assignment.id, CONTAINER_INBOX, "--out", "/out", "--device", options.device.kind,
             "--quiet", "--wait-for-delivery", f"{2 * time_limit(assignment, options.device.kind):g}"]
    return argv


def course_mounts(assignment: Assignment) -> list[str]:
    """`docker run` options that show the container the course root's public files and this assignment's hidden
    checks, read-only, and make that its course root; the solutions stay on the host."""
    checks = f"{CONTAINER_COURSE}/tests/{assignment.id}"
    return ["-v", f"{assignments_dir()}:{CONTAINER_COURSE}/assignments:ro",
            "-v", f"{assignment.checks_dir}:{checks}:ro", "-e", f"{COURSE_ROOT_ENV}={CONTAINER_COURSE}"]


def wait_for_delivery(inbox: Path, seconds: float) -> Delivery:
    """Inside the container: the submission the host delivers into `inbox` within `seconds`."""
    deadline = time.monotonic() + seconds
    path = inbox / DELIVERY_FILE
    while not path.is_file():
        if time.monotonic() > deadline:
            raise GraderError(f"No submission was delivered to this container within {seconds:g} s.")
        time.sleep(0.02)
    return Delivery.model_validate_json(path.read_text())


@dataclass
class _Container:
    """A started container waiting for its submission, with the host folders it mounts and its output."""

    name: str
    folder: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    started: float = field(default_factory=time.monotonic)

    @property
    def inbox(self) -> Path:
        return self.folder / "inbox"

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def output(self) -> str:
        return (self.folder / "container.log").read_text(errors="replace")

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "--force", self.name], capture_output=True)
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _start(assignment: Assignment, options: GradeOptions) -> _Container:
    folder = Path(tempfile.mkdtemp(prefix="grader-container-"))
    for sub in ("inbox", "out"):
        (folder / sub).mkdir()
    folder.chmod(0o755)
    if os.getuid() == 0:
        (folder / "out").chmod(0o777)  # the image's unprivileged user writes the reports
    name = f"grader-{uuid.uuid4().hex[:12]}"
    with open(folder / "container.log", "wb") as log:
        process = subprocess.Popen(docker_argv(assignment, folder / "inbox", folder / "out", options, name),
                                   stdout=log, stderr=subprocess.STDOUT)
    return _Container(name, folder, process)


def _key(assignment: Assignment, options: GradeOptions) -> tuple[Path, str, str, Device, Path | None]:
    """Which gradings a waiting container can serve: the same course root, assignment version, device and data."""
    return assignments_dir(), assignment.id, assignment.version, options.device, options.data_root


_waiting: Spares[_Container] = Spares(_Container.remove)


def close_waiting_containers() -> None:
    """Remove the containers started for submissions that never came (a batch is over)."""
    _waiting.close()


def grade_in_container(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """Grade in a container of its own; the report comes back through its out folder, or is written here.

    With `options.reuse_sandbox` (a batch) the next submission's container starts while this one grades."""
    if shutil.which("docker") is None:
        raise GraderError("--runner docker needs the docker command, which is not installed.")
    if options.data_root is not None and assignment.data is not None:  # the container's cache is read-only: fill it
        data = load_grading_data(options.data_root, assignment.data)
        if assignment.training is not None:
            data.held_out(assignment.training.validation)
    options.status("container")
    limit = time_limit(assignment, options.device.kind)
    key = _key(assignment, options)

    def usable(container: _Container) -> bool:
        # One waiting longer than a grading's limit could end itself (it waits twice that) before its delivery.
        return time.monotonic() - container.started < limit and container.process.poll() is None

    container = _waiting.take(key, usable) or _start(assignment, options)
    if options.reuse_sandbox:
        _waiting.put(key, _start(assignment, options))
    try:
        deliver(container.inbox, source, options.student_id or source.stem)
        try:
            container.process.wait(timeout=limit)
            timed_out = None
        except subprocess.TimeoutExpired:
            timed_out = Failure(stage="container", kind=FailureKind.TIMEOUT,
                                message=f"Grading took longer than {limit:g} s in total, so its container was stopped.")
        if (container.out / REPORT_JSON).is_file():
            return _collect(container.out, out_dir)
        problem = timed_out or _container_problem(container)
    finally:
        container.remove()
    return write_failed_report(assignment, source, options.student_id or source.stem, problem, out_dir, runner="docker")


def deliver(inbox: Path, source: Path, student_id: str) -> None:
    """Copy the submission into a container's inbox, then say what it is (the container waits for that file)."""
    if source.is_dir():
        shutil.copytree(source, inbox / source.name, symlinks=True)
    else:
        shutil.copy2(source, inbox / source.name, follow_symlinks=False)
    write_atomic(inbox / DELIVERY_FILE, Delivery(source=source.name, student_id=student_id).model_dump_json())


def _collect(container_out: Path, out_dir: Path) -> Report:
    """Install the container's report folder into `out_dir`."""
    return install_report_folder({p.relative_to(container_out).as_posix(): p.read_bytes()
                                  for p in container_out.rglob("*") if p.is_file()}, out_dir)


def _container_problem(container: _Container) -> Failure:
    """Why a container that ended left no report: out of memory, an engine error, or a crash."""
    inspect = subprocess.run(["docker", "inspect", "--format", "{{.State.OOMKilled}}", container.name],
                             capture_output=True, text=True)
    details = trim(container.output())
    returncode = container.process.returncode
    if inspect.stdout.strip() == "true":
        return Failure(stage="container", kind=FailureKind.OUT_OF_MEMORY, details=details,
                       message="Grading ran out of memory in its container, which was stopped.")
    if returncode == 125:
        raise GraderError(f"docker could not start the grading container: {container.output().strip()[-300:]}")
    return Failure(stage="container", kind=FailureKind.CRASH, details=details,
                   message=f"The grading container exited with code {returncode} without a report.")
