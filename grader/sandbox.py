"""Run one stage of student code in a fresh child process with hard limits.

With bubblewrap (`bwrap`) the child gets no network, a read-only view of only the interpreter,
the grader package and what the stage binds in, its own PID namespace (so nothing it starts
outlives it) and a writable work dir. Without bubblewrap it falls back to rlimits and a new
process group, and the report says so. Either way the parent enforces wall time, resident
memory and process count by watching the whole process tree, and keeps only the head and
tail of the output.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from grader.errors import GraderError
from grader.paths import ASSIGNMENTS_DIR, PACKAGE_DIR

SANDBOX_ENV = "GRADER_SANDBOX"  # "bubblewrap" or "rlimits" forces a mode
INSIDE_WORKDIR = Path("/sandbox")
POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
SANDBOX_UID_BASE = 200_000  # unprivileged uids the sandbox runs as when the grader is root
# RLIMIT_NPROC sits a little above the watched process limit, so the watcher still sees (and reports) a
# fork bomb that runs into it, instead of the bomb idling at the cap until the wall time is up.
NPROC_SLACK = 8


@dataclass(frozen=True)
class StageLimits:
    """Limits for one child process tree."""

    wall_seconds: float
    memory_mb: int
    processes: int
    file_size_mb: int
    output_kb: int
    threads: int = 1


@dataclass
class SandboxResult:
    returncode: int | None
    seconds: float
    output: str
    limit_seconds: float
    limit_memory_mb: int
    timed_out: bool = False
    out_of_memory: bool = False
    too_many_processes: bool = False

    @property
    def killed_by(self) -> str | None:
        """Signal name when the child died of a signal the grader did not send."""
        if self.returncode is not None and self.returncode < 0:
            return signal.Signals(-self.returncode).name
        return None


@dataclass
class Mount:
    """A host path made visible read-only inside the sandbox at `target` (bubblewrap mode)."""

    source: Path
    target: Path

    @property
    def inside(self) -> Path:
        """Where the stage finds this path: `target` under bubblewrap, the host path otherwise."""
        return self.target if bubblewrap_works() else self.source


@dataclass
class Stage:
    """A command and what it may see."""

    argv: list[str]
    workdir: Path
    limits: StageLimits
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    gpu_index: int | None = None
    on_poll: Callable[[], None] | None = None  # called between watchdog polls, e.g. to show progress


@functools.cache
def bubblewrap_works() -> bool:
    """Whether `bwrap` exists and can create namespaces here (it cannot in many containers)."""
    forced = os.environ.get(SANDBOX_ENV)
    if forced:
        return forced == "bubblewrap"
    if shutil.which("bwrap") is None:
        return False
    # /proc and /dev as the real stages mount them: some container profiles allow namespaces but not these.
    probe = ["bwrap", *_namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def sandbox_name() -> str:
    return "bubblewrap" if bubblewrap_works() else "rlimits"


def python_stage(module: str, args: list[str], workdir: Path, limits: StageLimits, **options) -> Stage:
    """A stage running one of the grader's in-sandbox entry points (`grader.harness.*`)."""
    return Stage([sys.executable, "-m", module, *args], workdir, limits, **options)


def run(stage: Stage) -> SandboxResult:
    """Run `stage` to completion or until a limit is hit; never raises for what the child does."""
    uid = next(_sandbox_uids)
    if bubblewrap_works() and os.geteuid() == 0:
        _require_readable_by_others(stage.mounts)
        _give_workdir_to_sandbox_user(stage.workdir, uid)
    argv, cwd = (_bubblewrap_argv(stage, uid), None) if bubblewrap_works() else (stage.argv, stage.workdir)
    # Root is exempt from RLIMIT_NPROC (under bubblewrap it switches user first); others count from now.
    nproc = None if os.geteuid() == 0 else _processes_of_user(os.getuid()) + stage.limits.processes + NPROC_SLACK
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=_child_env(stage),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=functools.partial(_apply_rlimits, stage.limits, nproc),
    )
    output = _BoundedOutput(proc.stdout, stage.limits.output_kb * 1024)
    result = _watch(proc, stage, started)
    result.output = output.text()
    return result


def _watch(proc: subprocess.Popen, stage: Stage, started: float) -> SandboxResult:
    limits = stage.limits
    deadline = started + limits.wall_seconds
    result = SandboxResult(returncode=None, seconds=0.0, output="", limit_seconds=limits.wall_seconds,
                           limit_memory_mb=limits.memory_mb)
    tree = psutil.Process(proc.pid)
    while True:
        try:
            result.returncode = proc.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if stage.on_poll:
            stage.on_poll()
        resident_mb, count = _tree_usage(tree, limits.memory_mb)
        result.timed_out = time.monotonic() > deadline
        result.out_of_memory = resident_mb > limits.memory_mb
        result.too_many_processes = count > limits.processes
        if result.timed_out or result.out_of_memory or result.too_many_processes:
            _kill_tree(proc, tree)
            proc.wait()
            break
    _kill_tree(proc, tree)  # whatever the stage left behind
    result.seconds = time.monotonic() - started
    return result


def _tree_usage(root: psutil.Process, memory_mb: int) -> tuple[float, int]:
    """Resident MB and number of processes in the child's tree.

    RSS counts the pages that forked processes share once in every process, so a tree of several
    processes over the limit is measured again by proportional set size (slower to read) first.
    """
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0, 0
    sizes = [size for member in members if (size := _memory_of(member, "rss")) is not None]
    resident = sum(sizes) / 2**20
    if resident > memory_mb and len(sizes) > 1:
        resident = sum(size for member in members if (size := _memory_of(member, "pss")) is not None) / 2**20
    return resident, len(sizes)


def _memory_of(member: psutil.Process, kind: str) -> int | None:
    """`rss` or `pss` bytes of one process; None once it is gone."""
    try:
        info = member.memory_full_info() if kind == "pss" else member.memory_info()
    except psutil.Error:
        return None
    return getattr(info, kind, info.rss)


def _kill_tree(proc: subprocess.Popen, tree: psutil.Process) -> None:
    try:
        members = tree.children(recursive=True)
    except psutil.Error:
        members = []
    for sig_target in (lambda: os.killpg(proc.pid, signal.SIGKILL), *[m.kill for m in members]):
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            sig_target()


def _apply_rlimits(limits: StageLimits, nproc: int | None) -> None:
    """Runs in the child between fork and exec: only plain system calls here."""
    file_size = limits.file_size_mb * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the stage dies with the grader, even on SIGKILL
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    else:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))


def _processes_of_user(uid: int) -> int:
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid)


# A uid of its own per stage, so concurrent stages never share a process count or each other's files.
_sandbox_uids = itertools.count(SANDBOX_UID_BASE + (os.getpid() % 1000) * 1000)


def _require_readable_by_others(mounts: list[Mount]) -> None:
    """The sandbox's user owns none of the mounted paths, so it reads only what any user may read."""
    for mount in mounts:
        mode = mount.source.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            raise GraderError(f"{mount.source} is not readable by other users, so the sandbox cannot read it; "
                              f"run chmod -R a+rX {mount.source}.")


def _give_workdir_to_sandbox_user(workdir: Path, uid: int) -> None:
    for path in [workdir, *workdir.rglob("*")]:
        os.lchown(path, uid, uid)


def _child_env(stage: Stage) -> dict[str, str]:
    home = str(INSIDE_WORKDIR if bubblewrap_works() else stage.workdir)
    threads = str(stage.limits.threads)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        # Keep freed memory for the next batch instead of returning it to the OS and faulting it in again
        # (measured: a2 epoch 4.3-5.0 s -> 2.8-3.3 s at one thread; bench/harness.py).
        "MALLOC_TOP_PAD_": str(256 * 2**20),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "CUDA_VISIBLE_DEVICES": "" if stage.gpu_index is None else str(stage.gpu_index),
    }
    return env | stage.env


def _namespace_flags() -> list[str]:
    if os.geteuid() == 0:  # no user namespace: the child switches to an unprivileged uid with setpriv
        return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


def _bubblewrap_argv(stage: Stage, uid: int) -> list[str]:
    argv = ["bwrap", *_namespace_flags(), "--die-with-parent", "--new-session"]
    for name in ("usr", "etc/alternatives"):
        argv += ["--ro-bind-try", f"/{name}", f"/{name}"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(stage.limits.file_size_mb * 2**20), "--tmpfs", "/tmp"]
    binds = [(path, path) for path in _interpreter_paths()] + [(m.source, m.target) for m in stage.mounts]
    for parent in sorted({a for _, target in binds for a in target.parents if a != Path("/")}):
        argv += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make them 0700 otherwise
    for source, target in binds:
        argv += ["--ro-bind", str(source), str(target)]
    if stage.gpu_index is not None:
        for device in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", f"nvidia{stage.gpu_index}"):
            argv += ["--dev-bind-try", f"/dev/{device}", f"/dev/{device}"]
    argv += ["--bind", str(stage.workdir), str(INSIDE_WORKDIR), "--chdir", str(INSIDE_WORKDIR)]
    if os.geteuid() == 0:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all"]
    else:
        argv += ["--"]
    return argv + stage.argv


def _interpreter_paths() -> list[Path]:
    """The Python installation, the virtualenv and the grader's own package and configs, deduplicated."""
    candidates = [Path(sys.base_prefix), Path(sys.prefix), PACKAGE_DIR, ASSIGNMENTS_DIR]
    paths: list[Path] = []
    for path in sorted({p.resolve() for p in candidates}):
        if not str(path).startswith("/usr/") and not any(path.is_relative_to(p) for p in paths):
            paths.append(path)
    return paths


class _BoundedOutput:
    """Drains a pipe in a thread, keeping the first and last `limit/2` bytes."""

    def __init__(self, pipe, limit: int) -> None:
        self._pipe, self._half = pipe, max(limit // 2, 1)
        self._head, self._tail, self._dropped = bytearray(), bytearray(), 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := self._pipe.read1(65536):
            room = self._half - len(self._head)
            self._head += chunk[:room]
            self._tail += chunk[room:] if room > 0 else chunk
            if len(self._tail) > self._half:
                self._dropped += len(self._tail) - self._half
                del self._tail[: len(self._tail) - self._half]

    def text(self) -> str:
        self._thread.join(timeout=5)
        gap = f"\n[... {self._dropped} bytes of output dropped ...]\n" if self._dropped else ""
        return (bytes(self._head) + gap.encode() + bytes(self._tail)).decode("utf-8", "replace")
