"""Run stages of student code in a warm, sandboxed Python: one forked child per stage, with hard limits.

A `Sandbox` (kept for the next submission of a batch or a Ray worker) starts `grader.harness.zygote` once,
inside bubblewrap (`grader.bubblewrap`), and has it import the heavy libraries; each stage is then a fork of it,
isolated further by the zygote. The host enforces wall time, CPU time, resident memory and process count by
watching the stage's process tree (`grader.watchdog`), and keeps only the head and tail of its output. Without
bubblewrap the same runs with rlimits only, and reports say so.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import itertools
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack, cast

import psutil

from grader import bubblewrap
from grader.harness.zygote import STAGE_HOME
from grader.paths import COURSE_ROOT_ENV
from grader.protocol import CONTROL, SandboxReady, StageExited, StageRequest, StageStarted
from grader.spares import Spares
from grader.watchdog import BoundedOutput, StageTree

POLL_SECONDS = 0.1
START_SECONDS = 120.0  # importing torch in a cold sandbox on a loaded machine
EXIT_SECONDS = 10.0  # a killed stage's keeper reports back within this
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
SANDBOX_UID_BASE = 200_000  # unprivileged uids the stages run as when the grader is root
# RLIMIT_NPROC sits a little above the watched process limit, so the watcher still sees (and reports) a
# fork bomb that runs into it, instead of the bomb idling at the cap until the wall time is up.
NPROC_SLACK = 8
# Environment that pins torch's, MKL's and oneDNN's CPU kernels (read when torch is imported).
CPU_KERNELS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
# What the grading stages need, imported once per sandbox instead of once per stage.
HARNESS_PRELOAD = ("numpy", "torch", "torchvision.transforms", "pytest", "_pytest.timing", "pytest_timeout",
                   "grader.pytest_plugin", "grader.harness.interface", "grader.harness.checks",
                   "grader.harness.training", "grader.harness.evaluation")


@dataclass(frozen=True)
class StageLimits:
    """Limits for one stage's process tree; `cpu_seconds` (CPU time of the whole tree per thread) is optional."""

    wall_seconds: float
    memory_mb: int
    processes: int
    file_size_mb: int
    output_kb: int
    threads: int = 1
    cpu_seconds: float | None = None


@dataclass
class SandboxResult:
    returncode: int | None
    seconds: float
    output: str
    limit_seconds: float
    limit_memory_mb: int
    cpu_seconds: float = 0.0
    limit_cpu_seconds: float | None = None
    timed_out: bool = False
    out_of_cpu: bool = False
    out_of_memory: bool = False
    too_many_processes: bool = False

    @property
    def killed_by(self) -> str | None:
        """Signal name when the stage died of a signal the grader did not send."""
        if self.returncode is not None and self.returncode < 0:
            return signal.Signals(-self.returncode).name
        return None


@dataclass(frozen=True)
class Mount:
    """A host path made visible read-only inside the sandbox at `target` (bubblewrap mode)."""

    source: Path
    target: Path


@dataclass
class Stage:
    """What to run (`python ARGV...` style: `-m module args` or `-c code`), where, and within which limits."""

    argv: list[str]
    workdir: Path
    limits: StageLimits
    env: dict[str, str] = field(default_factory=dict)
    on_poll: Callable[[], None] | None = None  # called between watchdog polls, e.g. to show progress
    sees: frozenset[Path] = frozenset()  # the targets of the sandbox's mounts this stage may read; the rest are hidden


@dataclass(frozen=True)
class SandboxConfig:
    """What a sandbox sees and imports; sandboxes with equal configs are interchangeable."""

    mounts: tuple[Mount, ...] = ()
    gpu_index: int | None = None
    threads: int = 1
    cpu_kernels: str = "native"
    preload: tuple[str, ...] = ()
    course_root: Path | None = None  # its assignments/ every stage reads, never its solutions/; in $GRADER_COURSE_ROOT


def sandbox_name() -> str:
    return "bubblewrap" if bubblewrap.works() else "rlimits"


class StageOptions(TypedDict, total=False):
    """A Stage's optional fields, as python_stage passes them on."""

    env: dict[str, str]
    on_poll: Callable[[], None] | None
    sees: frozenset[Path]


def python_stage(module: str, args: list[str], workdir: Path, limits: StageLimits,
                 **options: Unpack[StageOptions]) -> Stage:
    """A stage running one of the grader's in-sandbox entry points (`grader.harness.*`)."""
    return Stage(["-m", module, *args], workdir, limits, **options)


MessageT = TypeVar("MessageT")
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")


class SandboxBroken(RuntimeError):
    """The warm sandbox process itself failed: a grader problem, reported as such for this submission."""


class Sandbox:
    """A warm sandboxed Python (see module docstring); `run` one stage at a time, each in a fresh fork."""

    def __init__(self, config: SandboxConfig = SandboxConfig()) -> None:
        self.config = config
        self.root = Path(tempfile.mkdtemp(prefix="grader-stages-"))
        self.isolated = bubblewrap.works()
        if self.isolated and os.geteuid() == 0:
            bubblewrap.require_readable_by_others([mount.source for mount in config.mounts])
        self._control, remote = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = ["-m", "grader.harness.zygote", str(remote.fileno()), "1" if self.isolated else "0", *config.preload]
        # Started from one long-lived thread: the parent-death signal fires when the *thread* that forked ends,
        # and a sandbox outlives the worker thread that asked for it (a spare for the next submission).
        self._process = _LAUNCHER.submit(
            subprocess.Popen, self._command(argv),
            env=_base_env(config), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=[remote.fileno()], start_new_session=True, preexec_fn=_die_with_parent).result()
        remote.close()
        # stdout=PIPE in binary mode: Popen gives a BufferedReader, which typeshed types as IO[bytes] | None.
        self._log = BoundedOutput(cast(io.BufferedReader, self._process.stdout), 16 * 1024)
        self._zygote: psutil.Process | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _command(self, python_args: list[str]) -> list[str]:
        if not self.isolated:
            return [sys.executable, *python_args]
        mounts = [(mount.source, mount.target) for mount in self.config.mounts]
        public = [self.config.course_root / "assignments"] if self.config.course_root else []
        return bubblewrap.command(mounts, self.config.gpu_index, self.root, python_args, public)

    def stage_dir(self, name: str) -> Path:
        """A fresh, empty folder for one stage; only that stage sees it (at /sandbox under bubblewrap)."""
        folder = self.root / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        return folder

    def clear(self) -> None:
        """Remove every stage's folder, so the next submission starts with an empty stages root."""
        for folder in self.root.iterdir():
            shutil.rmtree(folder, ignore_errors=True)

    def serving(self) -> bool:
        """Whether the warm process is alive and waiting for the next stage."""
        return self._process.poll() is None and not self._lock.locked()

    def inside(self, workdir: Path) -> Path:
        """Where a stage running in `workdir` sees that folder."""
        return Path(STAGE_HOME) if self.isolated else workdir

    def run(self, stage: Stage) -> SandboxResult:
        """Run `stage` to completion or until a limit is hit; never raises for what the stage does."""
        with self._lock:
            zygote = self._wait_ready()
            uid = next(_sandbox_uids) if self.isolated and os.geteuid() == 0 else None
            if uid is not None:
                _give_workdir_to_sandbox_user(stage.workdir, uid)
            read_end, write_end = os.pipe()
            request = self._request(stage, uid)
            started = time.monotonic()
            socket.send_fds(self._control, [request.model_dump_json().encode()], [write_end])
            os.close(write_end)
            output = BoundedOutput(os.fdopen(read_end, "rb"), stage.limits.output_kb * 1024)
            self._expect(StageStarted, EXIT_SECONDS)
            result = self._watch(stage, started, zygote)
            result.output = output.text()
            return result

    def close(self) -> None:
        """End the sandbox process and everything in it, and remove the stages' folders."""
        with contextlib.suppress(OSError):
            self._control.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _request(self, stage: Stage, uid: int | None) -> StageRequest:
        limits = stage.limits
        # A fresh uid starts from zero processes; a shared one counts from how many it already runs.
        shared = 0 if uid is not None or os.geteuid() == 0 else _processes_of_user(os.getuid())
        processes = shared + limits.processes + NPROC_SLACK
        workdir = stage.workdir.relative_to(self.root).as_posix() if self.isolated else str(stage.workdir)
        hidden = [str(m.target) for m in self.config.mounts if m.target not in stage.sees] if self.isolated else []
        return StageRequest(argv=stage.argv, workdir=workdir, uid=uid, env=_stage_env(self, stage),
                            file_size_bytes=limits.file_size_mb * 2**20, processes=processes,
                            tmp_bytes=limits.file_size_mb * 2**20, hidden=hidden)

    def _wait_ready(self) -> psutil.Process:
        """The zygote's process, once the sandbox said it is ready."""
        if self._zygote is None:
            self._expect(SandboxReady, START_SECONDS)
            self._zygote = _find_zygote(self._process.pid)
        return self._zygote

    def _expect(self, kind: type[MessageT], seconds: float) -> MessageT:
        """The next control message, which must be of `kind`; a silent or dead sandbox is a SandboxBroken."""
        ready, _, _ = select.select([self._control], [], [], seconds)
        message = self._control.recv(65536) if ready else b""
        if not message:
            raise SandboxBroken(f"The sandbox process stopped answering; its output: {self._log.text()[-2000:]}")
        parsed = CONTROL.validate_json(message)
        if not isinstance(parsed, kind):
            raise SandboxBroken(f"The sandbox process sent {parsed!r} instead of {kind.__name__}.")
        return parsed

    def _watch(self, stage: Stage, started: float, zygote: psutil.Process) -> SandboxResult:
        limits = stage.limits
        result = SandboxResult(returncode=None, seconds=0.0, output="", limit_seconds=limits.wall_seconds,
                               limit_memory_mb=limits.memory_mb, limit_cpu_seconds=limits.cpu_seconds)
        tree = StageTree(zygote, self.isolated)
        while True:
            ready, _, _ = select.select([self._control], [], [], POLL_SECONDS)
            if ready:
                break
            if stage.on_poll:
                stage.on_poll()
            resident_mb, count, result.cpu_seconds = tree.usage(limits.memory_mb)
            result.timed_out = time.monotonic() - started > limits.wall_seconds
            cpu_per_thread = result.cpu_seconds / limits.threads
            result.out_of_cpu = limits.cpu_seconds is not None and cpu_per_thread > limits.cpu_seconds
            result.out_of_memory = resident_mb > limits.memory_mb
            result.too_many_processes = count > limits.processes
            if result.timed_out or result.out_of_cpu or result.out_of_memory or result.too_many_processes:
                tree.kill()
                break
        exited = self._expect(StageExited, EXIT_SECONDS)
        tree.kill()  # whatever the rlimits fallback left behind
        result.returncode = exited.returncode
        result.seconds = time.monotonic() - started
        return result


def _find_zygote(launcher: int) -> psutil.Process:
    """The zygote's host process: the launcher itself, or bubblewrap's descendant running the zygote module."""
    process = psutil.Process(launcher)
    candidates = [process, *process.children(recursive=True)]
    for candidate in candidates:
        with contextlib.suppress(psutil.Error):
            if candidate.cmdline()[1:3] == ["-m", "grader.harness.zygote"]:
                return candidate
    raise SandboxBroken("The sandbox process could not be found after it started.")


def _die_with_parent() -> None:
    """Runs between fork and exec: the sandbox dies with the grader, even on SIGKILL."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _processes_of_user(uid: int) -> int:
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid)


# A uid of its own per stage, so concurrent stages never share a process count or each other's files.
_sandbox_uids = itertools.count(SANDBOX_UID_BASE + (os.getpid() % 1000) * 1000)


def _give_workdir_to_sandbox_user(workdir: Path, uid: int) -> None:
    for path in [workdir, *workdir.rglob("*")]:
        os.lchown(path, uid, uid)
    workdir.chmod(0o755)  # the zygote (root without CAP_DAC_OVERRIDE) must reach it to mount it


def cpu_environment(threads: int, cpu_kernels: str) -> dict[str, str]:
    """How every stage computes on the CPU: its threads, how they wait, and which kernels (read at torch import)."""
    return {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        # Waiting threads spin briefly, then sleep. libgomp's default spin (300,000 rounds) burnt the CPU budget on a
        # busy machine (a2, 3 epochs: 3.4 CPU s per thread alone, 10.1 beside two CPU hogs); sleeping at once
        # (OMP_WAIT_POLICY=PASSIVE) kept it level but made quiet epochs 1.6x slower; 1,000 rounds: 2.9 alone,
        # 3.0 beside the hogs, epochs 1.26 s (spinning: 1.15 s). docs/benchmarks/index.md has the table.
        "GOMP_SPINCOUNT": "1000",
        # Keep freed memory for the next batch instead of returning it to the OS and faulting it in again
        # (measured: a2 epoch 4.3-5.0 s -> 2.8-3.3 s at one thread; bench/harness.py).
        "MALLOC_TOP_PAD_": str(256 * 2**20),
    } | CPU_KERNELS.get(cpu_kernels, {})


def _base_env(config: SandboxConfig) -> dict[str, str]:
    return cpu_environment(config.threads, config.cpu_kernels) | {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": "" if config.gpu_index is None else str(config.gpu_index),
    } | ({COURSE_ROOT_ENV: str(config.course_root)} if config.course_root else {})


def _stage_env(box: Sandbox, stage: Stage) -> dict[str, str]:
    home = str(box.inside(stage.workdir))
    return _base_env(box.config) | {"HOME": home, "TMPDIR": home} | stage.env


_idle: Spares[Sandbox] = Spares(Sandbox.close)  # by config: sandboxes with equal configs are interchangeable


def prestart_sandbox(config: SandboxConfig) -> None:
    """Start a warm sandbox now, for the next submission with this config (a container waiting for its submission)."""
    _idle.put(config, Sandbox(config))


def close_idle_sandboxes() -> None:
    """End the sandboxes waiting for a next submission (a batch is over)."""
    _idle.close()


@contextlib.contextmanager
def warm_sandbox(config: SandboxConfig, reuse: bool = False) -> Iterator[Sandbox]:
    """A warm sandbox for one submission. With `reuse` (a batch, a Ray worker) it waits afterwards for the next
    submission with the same config instead of ending: its process never runs student code, and no stage can
    reach it, the other stages' folders or their namespaces (tests/framework/test_sandbox.py)."""
    box = _idle.take(config) or Sandbox(config)
    try:
        yield box
    except BaseException:
        box.close()
        raise
    if reuse and box.serving():
        box.clear()
        _idle.put(config, box)
    else:
        box.close()
