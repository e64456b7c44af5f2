"""Grading on a Ray cluster: each submission is one Ray task that runs `grader.pipeline.grade` on a node.

The driver (this process) sends the submission's bytes, Ray decides where and when the task runs, and the
finished report folder comes back and is written into the driver's out dir, `report.json` last. The course root's
public files and hidden checks (never its solutions) travel packed once through Ray's object store; a node unpacks
them into a cache folder named by their digest. A node that grades with other data, another grader build or other
course content grades nothing: its task says so and goes to another node.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import platform
import socket
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

import psutil
import ray
from ray.actor import ActorHandle
from ray.exceptions import RayError, RayTaskError

from grader import __version__
from grader.config import Assignment, Data, DeviceKind
from grader.context import Device, load_grading_data
from grader.data import DATA_DIR_ENV, cache_dir, resolve_data_root, stored_fingerprint
from grader.errors import GraderError
from grader.intake import student_id_for
from grader.models import Failure, FailureKind, Report, StrictModel
from grader.paths import COURSE_ROOT_ENV, PACKAGE_DIR, course_root
from grader.pipeline import GradeOptions, grade, write_failed_report
from grader.reports import install_report_folder

MAX_RETRIES = 2  # further tries after a lost worker or node, and after a node that cannot grade
POLL_SECONDS = 0.2  # how often the driver looks for finished tasks and new statuses
CONNECT_SECONDS = 5.0  # to wait for an answer at a cluster's address
HEAD_NODE = "node:__internal_head__"  # Ray's own resource that only the head node has
NODE_ID_LABEL = "ray.io/node-id"  # Ray's own label on every node
CACHE_NAMES = ("__pycache__", ".pytest_cache")
ATTEMPT_STARTED = "\x00attempt"  # a task's first status on each try, with its worker's node and PID
WAITING_FOR_RETRY = "waiting for a worker"  # a lost try's status until Ray starts the next
TASK_IMPORT_ERROR = "failed to import on the worker"  # Ray's words when a node cannot load `grade_on_node`
logger = logging.getLogger(__name__)


class Expectation(StrictModel):
    """What every node must grade with: the driver's grader build, course content and data fingerprint."""

    grader: str
    course: str
    data: str | None


class Job(StrictModel):
    """One submission as it travels to a node: its bytes, the assignment and what the node must match."""

    job_id: str
    assignment: Assignment
    source_name: str
    source_is_folder: bool
    payload: bytes
    student_id: str
    device_kind: DeviceKind
    expected: Expectation


class NodeProblem(StrictModel):
    """Why a node graded nothing: one sentence, and the failure kind it ends as when no node is left."""

    kind: FailureKind
    message: str


class Outcome(StrictModel):
    """What a task brings back: the node that ran it and either the report folder or the node's problem."""

    node: str
    node_id: str
    files: dict[str, bytes] = {}
    problem: NodeProblem | None = None


@ray.remote(num_cpus=0)
class StatusBoard:
    """Collects (job id, status) pairs that tasks post, until the driver takes them.

    Tasks post without waiting: a task blocked in `ray.get` lends its CPUs to other tasks, which would let
    more submissions run on a node than its resources allow.
    """

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def post(self, job_id: str, status: str) -> None:
        self._items.append((job_id, status))

    def take(self) -> list[tuple[str, str]]:
        items, self._items = self._items, []
        return items


@dataclass(frozen=True)
class _Worker:
    """Where a try runs: its node, and its process when that node is the driver's (which the driver can watch)."""

    node_id: str
    process: psutil.Process | None

    @classmethod
    def of(cls, status: str, driver_node: str) -> _Worker:
        """The worker an `ATTEMPT_STARTED` status names; gone already when it is the driver's node's and has ended."""
        _, node_id, pid = status.split()
        if node_id != driver_node:
            return cls(node_id, None)
        try:
            return cls(node_id, psutil.Process(int(pid)))
        except psutil.Error:
            return cls("", None)  # on no live node: lost

    def alive(self, live_nodes: set[str]) -> bool:
        """Whether the try can still finish: its process runs (this node) or its node is alive (another node)."""
        if self.process is None:
            return self.node_id in live_nodes
        try:
            return self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


@dataclass
class _Pending:
    """A submitted job on the driver: where its report goes, whom to tell, and how often a node refused it."""

    job: Job
    source: Path
    out_dir: Path
    on_status: Callable[[str], None]
    future: Future[Report]
    refusals: int = 0
    attempts: int = 0  # tries that started on a node: Ray retries a task whose worker died
    worker: _Worker | None = None  # the current try's, until it is seen lost

    def relay(self, status: str, driver_node: str) -> None:
        """A task's status to the listener; each try after the first says which it is."""
        if status.startswith(ATTEMPT_STARTED):
            self.attempts += 1
            self.worker = _Worker.of(status, driver_node)
            status = "started"
        if self.attempts > 1:
            status = f"retrying (attempt {self.attempts} of {MAX_RETRIES + 1}): {status}"
        self.on_status(status)

    def try_lost(self) -> None:
        """The current try's worker is gone: say at once that Ray retries it (Ray says so only as the retry starts)."""
        self.worker = None
        if self.attempts <= MAX_RETRIES:
            self.on_status(f"retrying (attempt {self.attempts + 1} of {MAX_RETRIES + 1}): {WAITING_FOR_RETRY}")


class Dispatcher:
    """Grades submissions as Ray tasks on a cluster and brings each finished report folder back to the driver."""

    def __init__(self, address: str, data_root: Path | None,
                 device_kind: Literal["cpu", "cuda", "auto"] = "cpu") -> None:
        """Connect to Ray: "local" (embedded, this machine), "auto", "ray://HOST:PORT" or "HOST:PORT"."""
        self._owns_ray = _connect(address, data_root)
        self.device_kind: DeviceKind = _resolve_device(device_kind)
        root = course_root()
        self._data_root = data_root
        self._fingerprints: dict[str, str | None] = {}  # assignment id -> its data's fingerprint, read once
        self._course_digest = course_digest(root)
        self._course = ray.put(pack_course(root))  # once: every task's node fetches it from the object store
        self._node_id = ray.get_runtime_context().get_node_id()  # the driver's: its workers' PIDs are watched here
        board = StatusBoard.options(resources={HEAD_NODE: 0.001})  # type: ignore[attr-defined]  # Ray: no ActorClass
        self._statuses = board.remote()
        self._pending: dict[ray.ObjectRef[Outcome], _Pending] = {}
        self._bad_nodes: dict[str, NodeProblem] = {}  # node id -> why it must not grade for this driver
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._loop = threading.Thread(target=self._run, name="grader-dispatcher", daemon=True)
        self._loop.start()

    def submit(self, assignment: Assignment, source: Path, out_dir: Path, student_id: str,
               on_status: Callable[[str], None] = lambda status: None) -> Future[Report]:
        """Hand one submission to Ray; the future resolves to its Report once its folder is written here."""
        if self._closed.is_set():
            raise GraderError("The cluster dispatcher is closed; start a new one to grade more submissions.")
        if not _node_can_take(assignment, self.device_kind, set()):
            raise GraderError(_no_node_sentence(assignment, self.device_kind))
        job = Job(job_id=uuid.uuid4().hex, assignment=assignment, source_name=source.name,
                  source_is_folder=source.is_dir(), payload=pack_submission(source), student_id=student_id,
                  device_kind=self.device_kind,
                  expected=self._expectation(assignment))
        future: Future[Report] = Future()
        future.set_running_or_notify_cancel()
        self._launch(_Pending(job, source, out_dir, on_status, future))
        return future

    def workers(self, assignment: Assignment) -> int:
        """How many gradings of the assignment the cluster's live nodes can run at once."""
        return sum(_fits(node["Resources"], assignment, self.device_kind) for node in ray.nodes() if node["Alive"])

    def _expectation(self, assignment: Assignment) -> Expectation:
        """What a node must grade this assignment with; the data's fingerprint is read once per assignment, from the
        tensor cache's index (the driver, a `grader serve` web process too, grades nothing itself)."""
        if assignment.id not in self._fingerprints:
            declared, root = assignment.data, self._data_root
            self._fingerprints[assignment.id] = stored_fingerprint(root, declared) if root and declared else None
        return Expectation(grader=grader_build(), course=self._course_digest, data=self._fingerprints[assignment.id])

    def submit_grading(self, assignment: Assignment, source: Path, out_dir: Path,
                       options: GradeOptions) -> Future[Report]:
        """`submit` as a `grader.batch.SubmitFunction` (the cluster picks data root and device)."""
        return self.submit(assignment, source, out_dir, options.student_id or student_id_for(source), options.status)

    def close(self) -> None:
        """Stop the driver loop, cancel what is still running and disconnect from Ray if this made the link."""
        self._closed.set()
        self._loop.join()
        with self._lock:
            left, self._pending = self._pending, {}
        for ref, pending in left.items():
            with contextlib.suppress(RayError):
                ray.cancel(ref, force=True)
            pending.future.set_exception(GraderError(
                f"The cluster dispatcher closed before {pending.job.student_id} was graded; grade it again."))
        with contextlib.suppress(RayError):
            ray.kill(self._statuses)
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _launch(self, pending: _Pending, problem: NodeProblem | None = None) -> None:
        """Send the job to Ray, away from every node known to grade differently; report it if none is left."""
        job = pending.job
        with self._lock:
            bad_nodes = dict(self._bad_nodes)
        if not _node_can_take(job.assignment, job.device_kind, set(bad_nodes)):
            if problem is None and not bad_nodes:  # the nodes that could take it have left the cluster
                raise GraderError(_no_node_sentence(job.assignment, job.device_kind))
            problem = problem or next(iter(bad_nodes.values()))
            pending.future.set_result(cluster_failure_report(pending, Failure(
                stage="cluster", kind=problem.kind, message=problem.message)))
            return
        pending.on_status("queued")
        options = task_resources(job.assignment, job.device_kind)
        if bad_nodes:
            options["label_selector"] = {NODE_ID_LABEL: f"!in({','.join(sorted(bad_nodes))})"}
        ref = grade_on_node.options(max_retries=MAX_RETRIES, **options).remote(job, self._course, self._statuses)
        with self._lock:
            self._pending[ref] = pending

    def _run(self) -> None:
        """The driver loop, until `close`."""
        while not self._closed.is_set():
            if not self._poll():
                self._closed.wait(POLL_SECONDS)

    def _poll(self) -> bool:
        """Relay statuses, then finish every task that is done (statuses first, so none comes late).

        A function of its own so that no reference to a finished task's result outlives it: Ray would run a
        task again to rebuild a result that is still referenced when the node holding it leaves.
        """
        with self._lock:
            refs = list(self._pending)
        if not refs:
            return False
        ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=POLL_SECONDS)
        self._relay_statuses()
        self._watch_workers(waiting)
        for ref in ready:
            with self._lock:
                pending = self._pending.pop(ref)
            try:
                self._finish(ref, pending)
            except Exception as exc:  # noqa: BLE001 - a driver-side problem belongs to this job's future
                pending.future.set_exception(exc)
        return True

    def _watch_workers(self, waiting: list[ray.ObjectRef[Outcome]]) -> None:
        """Tell the listener of each unfinished task whose worker died (its process, or its node) that it is retried."""
        with self._lock:
            tries = [pending for ref in waiting if (pending := self._pending.get(ref)) and pending.worker is not None]
        if not tries:
            return
        remote = any(pending.worker and pending.worker.process is None for pending in tries)
        live_nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]} if remote else set()
        for pending in tries:
            if pending.worker is not None and not pending.worker.alive(live_nodes):
                pending.try_lost()

    def _relay_statuses(self) -> None:
        """Statuses to their jobs' listeners; those of finished jobs are dropped, so none comes after the report."""
        with contextlib.suppress(RayError):  # statuses are advisory; a lost status board loses only them
            items = ray.get(self._statuses.take.remote())
            with self._lock:
                listeners = {p.job.job_id: p.relay for p in self._pending.values()}
            for job_id, status in items:
                if job_id in listeners:
                    listeners[job_id](status, self._node_id)

    def _finish(self, ref: ray.ObjectRef[Outcome], pending: _Pending) -> None:
        try:
            outcome: Outcome = ray.get(ref)
        except RayTaskError as exc:
            pending.future.set_result(cluster_failure_report(pending, _task_error(exc)))
            return
        except RayError as exc:
            pending.future.set_result(cluster_failure_report(pending, Failure(
                stage="cluster", kind=FailureKind.WORKER_LOST, details=str(exc)[-4000:],
                message=f"The grading worker was lost {MAX_RETRIES + 1} times (its process or node died), "
                        "so this submission was not graded; a TA will look at it.")))
            return
        if outcome.problem is None:
            pending.future.set_result(install_report_folder(outcome.files, pending.out_dir))
            return
        with self._lock:
            first_time = self._bad_nodes.setdefault(outcome.node_id, outcome.problem) is outcome.problem
        if first_time:
            logger.warning("%s Its submissions go to other nodes.", outcome.problem.message)
        pending.refusals += 1
        if pending.refusals <= MAX_RETRIES:
            self._launch(pending, outcome.problem)
            return
        pending.future.set_result(cluster_failure_report(pending, Failure(
            stage="cluster", kind=outcome.problem.kind, message=outcome.problem.message)))


def _task_error(exc: RayTaskError) -> Failure:
    """The failure of a task that raised: a node with a grader too different to load the task, or a grader bug."""
    if TASK_IMPORT_ERROR in str(exc):
        return Failure(stage="cluster", kind=FailureKind.VERSION_MISMATCH, details=str(exc)[-4000:],
                       message="A node could not load the grader's grading task, so it runs another grader build; "
                               "a TA will regrade this submission.")
    return Failure(stage="cluster", kind=FailureKind.CRASH, details=str(exc)[-4000:],
                   message="The grader failed on this submission; a TA will look at it.")


class _Quiet(TypedDict):
    """ray.init's arguments that keep Ray's notices off the driver's terminal."""

    log_to_driver: bool
    logging_level: int


def _connect(address: str, data_root: Path | None) -> bool:
    """Join or start Ray; True when this call started the connection (and so `close` ends it)."""
    if ray.is_initialized():
        return False
    # Ray's own notices (token authentication, connecting) would break the live table; errors still show.
    quiet: _Quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address not in ("local", "auto") and not address.startswith("ray://"):
        _require_an_answer(address)
    try:
        if address == "local":
            # The workers of an embedded Ray are this machine's: they use the driver's data root.
            env = {DATA_DIR_ENV: str(data_root)} if data_root else {}
            ray.init(address="local", runtime_env={"env_vars": env}, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        if address == "auto":
            raise GraderError("--cluster auto found no Ray cluster: start one with `ray start --head`, "
                              "or set RAY_ADDRESS to its address.") from None
        raise GraderError(f"Could not join the Ray cluster at {address} ({str(exc).splitlines()[0].rstrip('.')}).") \
            from None
    return True


def _require_an_answer(address: str) -> None:
    """Fail in seconds, with one sentence, where Ray itself would retry an address that nothing answers at."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise GraderError(f"--cluster takes local, auto, ray://HOST:PORT or HOST:PORT, not {address!r}.")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise GraderError(f"Nothing answers at {address} ({exc.strerror or exc}); start the Ray head there with "
                          f"`ray start --head --port {port}`.") from None


def _resolve_device(choice: Literal["cpu", "cuda", "auto"]) -> DeviceKind:
    """cpu or cuda for the whole batch; auto is cuda when any node of the cluster has a GPU."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if choice == "cuda" and not gpus:
        raise GraderError("--device cuda was given, but no node of the Ray cluster has a GPU.")
    return "cuda" if choice == "cuda" or (choice == "auto" and gpus) else "cpu"


class TaskOptions(TypedDict):
    """A grading task's Ray options: its resources, and the nodes it may not run on."""

    num_cpus: int
    memory: int
    num_gpus: int
    label_selector: NotRequired[dict[str, str]]


def task_resources(assignment: Assignment, device_kind: DeviceKind) -> TaskOptions:
    """What one grading task asks Ray for: the assignment's threads and memory, and one GPU on CUDA."""
    return {"num_cpus": assignment.limits.threads, "memory": assignment.limits.runner_memory_mb * 2**20,
            "num_gpus": 1 if device_kind == "cuda" else 0}


def _fits(resources: dict[str, float], assignment: Assignment, device_kind: DeviceKind) -> int:
    """How many of the assignment's grading tasks a node with these resources runs at once."""
    asked = task_resources(assignment, device_kind)
    needs = {"CPU": asked["num_cpus"], "memory": asked["memory"], "GPU": asked["num_gpus"]}
    return min(int(resources.get(name, 0) // amount) for name, amount in needs.items() if amount)


def _node_can_take(assignment: Assignment, device_kind: DeviceKind, excluded: set[str]) -> bool:
    """Whether some live node outside `excluded` has the resources a task asks for (else it would wait forever)."""
    return any(node["Alive"] and node["NodeID"] not in excluded
               and _fits(node["Resources"], assignment, device_kind) > 0 for node in ray.nodes())


def _no_node_sentence(assignment: Assignment, device_kind: DeviceKind) -> str:
    asked = task_resources(assignment, device_kind)
    gpu = " and 1 GPU" if device_kind == "cuda" else ""
    return (f"No node of the Ray cluster can grade {assignment.id}: a submission needs {asked['num_cpus']} CPUs, "
            f"{asked['memory'] // 2**20} MB of memory{gpu} on one node.")


def pack_submission(source: Path) -> bytes:
    """The submission as bytes: a file as it is, a folder as a gzip tar holding it under its own name."""
    if not source.is_dir():
        return source.read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        # The folder itself may be a link (intake follows it); links inside it stay links.
        archive.add(source.resolve(), arcname=source.name)  # links stay links: intake refuses them as it would here
    return buffer.getvalue()


def unpack_submission(job: Job, folder: Path) -> Path:
    """The submission rebuilt under `folder` with its original name, so intake sees what the driver saw."""
    if not job.source_is_folder:
        path = folder / job.source_name
        path.write_bytes(job.payload)
        return path
    with tarfile.open(fileobj=io.BytesIO(job.payload), mode="r:gz") as archive:
        # Made by pack_submission from a folder walk, so no member can leave `folder`; the data filter would refuse the
        # absolute links a student may have left, which intake must see in order to reject them.
        archive.extractall(folder, filter="fully_trusted")  # noqa: S202 - trusted as said above
    return folder / job.source_name


def cluster_failure_report(pending: _Pending, failure: Failure) -> Report:
    """The report (written to the out dir) of a submission the cluster could not grade, saying why."""
    job = pending.job
    return write_failed_report(job.assignment, pending.source, job.student_id, failure, pending.out_dir, node="")


@functools.cache
def grader_build() -> str:
    """The grader's version and a digest of its code (equal builds grade alike)."""
    return f"{__version__}+{_digest(PACKAGE_DIR.parent, [PACKAGE_DIR])}"


def course_files(root: Path) -> list[Path]:
    """The folders of the course root a node grades with: `assignments/` and each assignment's hidden checks."""
    assignments = root / "assignments"
    return [assignments, *(root / "tests" / p.parent.name for p in sorted(assignments.glob("*/assignment.toml")))]


def course_digest(root: Path) -> str:
    """A digest of the course root's public files and hidden checks (equal digests grade alike)."""
    return _digest(root, course_files(root))


def _digest(base: Path, folders: list[Path]) -> str:
    """sha256 over every file below `folders` (caches left out): its path from `base`, then its bytes."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if any(part in CACHE_NAMES for part in path.parts) or path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def pack_course(root: Path) -> bytes:
    """The course root's public files and hidden checks as a gzip tar, paths relative to the root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", dereference=True) as archive:  # a linked folder as its files
        for folder in course_files(root):
            if folder.is_dir():
                archive.add(folder, arcname=folder.relative_to(root).as_posix(), filter=_not_cache)
    return buffer.getvalue()


def _not_cache(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = Path(info.name)
    return None if name.name in CACHE_NAMES or name.suffix == ".pyc" else info


def node_course(expected: str, packed: bytes) -> Path:
    """The driver's course content on this node: unpacked once into the cache folder its digest names."""
    folder = cache_dir() / "courses" / expected
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp, \
                tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as archive:
            unpacked = Path(tmp) / "course"
            archive.extractall(unpacked, filter="data")
            unpacked.chmod(0o755)  # the sandbox's stage users read it
            with contextlib.suppress(OSError):  # another worker of this node unpacked it first
                unpacked.rename(folder)
    return folder


@functools.cache
def _node_data_fingerprint(declared: Data) -> str:
    return load_grading_data(resolve_data_root(), declared).fingerprint


@functools.cache
def node_name(node_id: str) -> str:
    """The node as reports name it: its Ray node name when one was given, else the host name; plus its id."""
    info: dict[str, object] = next((n for n in ray.nodes() if n["NodeID"] == node_id), {})
    name = info.get("NodeName", "")
    if not name or name == info.get("NodeManagerAddress"):
        name = platform.node()
    return f"{name} ({node_id[:8]})"


def node_problem(expected: Expectation, node: str, course: Path, declared: Data | None) -> NodeProblem | None:
    """Why this node must not grade for the driver, or None when it has the same grader build, course content (in
    `course`) and the same images of what the assignment's `[data]` (`declared`) names."""
    if grader_build() != expected.grader:
        return NodeProblem(kind=FailureKind.VERSION_MISMATCH,
                           message=f"Node {node} runs grader {grader_build()}, expected {expected.grader}, "
                                   "so it graded nothing; a TA will regrade this submission.")
    if (content := course_digest(course)) != expected.course:
        return NodeProblem(kind=FailureKind.VERSION_MISMATCH,
                           message=f"Node {node} has course content {content} in {course}, expected "
                                   f"{expected.course}, so it graded nothing; a TA will regrade this submission.")
    if expected.data is None or declared is None:
        return None
    try:
        fingerprint = _node_data_fingerprint(declared)
    except GraderError as exc:
        return NodeProblem(kind=FailureKind.DATA_MISMATCH, message=f"Node {node} has no usable {declared.dataset} data "
                           f"({str(exc).rstrip('.')}), so it graded nothing; a TA will regrade this submission.")
    if fingerprint != expected.data:
        return NodeProblem(kind=FailureKind.DATA_MISMATCH,
                           message=f"Node {node} has {declared.dataset} fingerprint {fingerprint}, expected "
                                   f"{expected.data}, so it graded nothing; a TA will regrade this submission.")
    return None


@ray.remote
def grade_on_node(job: Job, course: bytes, statuses: ActorHandle[StatusBoard]) -> Outcome:
    """The Ray task: check the node, rebuild the submission, grade it here against the driver's course content
    (`course`, packed) and return the report folder."""
    node_id = ray.get_runtime_context().get_node_id()
    node = node_name(node_id)
    root = node_course(job.expected.course, course)
    problem = node_problem(job.expected, node, root, job.assignment.data)
    if problem is not None:
        return Outcome(node=node, node_id=node_id, problem=problem)
    os.environ[COURSE_ROOT_ENV] = str(root)  # this worker grades with the driver's course, whatever it had

    def say(status: str) -> None:
        statuses.post.remote(job.job_id, status)  # not waited for; a lost board loses only statuses

    say(f"{ATTEMPT_STARTED} {node_id} {os.getpid()}")

    device = Device("cuda", int(ray.get_gpu_ids()[0])) if job.device_kind == "cuda" else Device("cpu")
    data_root = resolve_data_root() if job.expected.data else None
    with tempfile.TemporaryDirectory(prefix="grader-cluster-") as tmp:
        source = unpack_submission(job, Path(tmp))
        out = Path(tmp) / "out"
        try:
            # Ray reuses this worker process: the next submission finds its sandbox started.
            grade(job.assignment, source, out, GradeOptions(data_root=data_root, device=device, reuse_sandbox=True,
                                                            student_id=job.student_id, status=say, node=node))
        except GraderError as exc:
            return Outcome(node=node, node_id=node_id, problem=NodeProblem(
                kind=FailureKind.NODE_ERROR, message=f"Node {node} could not grade: {str(exc).rstrip('.')}; "
                                                     "a TA will regrade this submission."))
        return Outcome(node=node, node_id=node_id, files={p.relative_to(out).as_posix(): p.read_bytes()
                                                          for p in out.rglob("*") if p.is_file()})

