"""The warm sandbox process: imports the heavy libraries once, then forks one child per stage on request.

Usage: python -m grader.harness.zygote CONTROL_FD ISOLATE PRELOAD...
It never runs student code itself. For each StageRequest (a JSON message on the control socket, with the
write end of the stage's output pipe attached) it forks a keeper, and the keeper forks the stage: with
ISOLATE=1 the stage has its own PID, mount, IPC and (empty) network namespace (so it cannot see, signal or trace
this process, and everything it starts dies with it), sees only its own work dir at /sandbox, a fresh /tmp and
/dev/shm, and
runs as its own unprivileged uid (root grader) or without any capability (user namespace). The stage then
runs its argv as `python ARGV...` would. The keeper reports the stage's exit status back to this process.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import re
import resource
import runpy
import signal
import socket
import struct
import sys
import traceback
from typing import NoReturn

import psutil

from grader.harness.submission import exit_now
from grader.protocol import SandboxReady, StageExited, StageRequest, StageStarted

STAGES_ROOT = "/stages"
STAGE_HOME = "/sandbox"
FRESH_TMP = "/.fresh-tmp"  # an empty folder where each stage's /tmp is built before it moves into place
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
# A stage's own namespaces: processes, mounts, System V IPC and a network with nothing in it (not even up).
STAGE_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_MOVE, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 8192, 16384, 1 << 18
MS_RDONLY, MS_REMOUNT = 1, 32
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
MESSAGE_BYTES = 1 << 20
_LIBC = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    arguments = [s.encode() if s is not None else None for s in (source, target, fstype)]
    _check(_LIBC.mount(*arguments, flags, data.encode() if data else None), f"mount {target}")


def _drop_capabilities() -> None:
    """Clear every capability set of this process (user-namespace mode, where the uid stays the same)."""
    header = struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two {effective, permitted, inheritable} u32 triples, all zero
    _check(_LIBC.syscall(126, header, data), "capset")  # SYS_capset on x86-64
    _LIBC.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def _enter_private_view(request: StageRequest) -> None:
    """Own /proc, only this stage's folder at /sandbox, other stages' folders and the mounts it does not need
    hidden, a fresh size-capped /tmp and /dev/shm."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount(f"{STAGES_ROOT}/{request.workdir}", STAGE_HOME, None, MS_BIND | MS_REC)
    _mount("tmpfs", STAGES_ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=4k,mode=0755")
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={request.tmp_bytes},mode=1777")
    for target in request.hidden:  # what another stage needs and this one must not see (training data, checks)
        _cover(target)
    _fresh_tmp(request.tmp_bytes)


def _cover(target: str) -> None:
    """Hide a mount under an empty, read-only one: a folder under a tmpfs, a file under an empty file of the stage's
    own /stages. (In a user namespace a mount made by a more privileged one cannot be unmounted, but it can be
    covered.)"""
    if os.path.isdir(target):
        _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0555")
        return
    empty = f"{STAGES_ROOT}/.empty"
    open(empty, "a").close()
    _mount(empty, target, None, MS_BIND)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _fresh_tmp(size: int) -> None:
    """A fresh, size-capped /tmp that still holds what the sandbox binds below /tmp (a checkout or virtualenv
    there), with the same read-only mounts."""
    _mount("tmpfs", FRESH_TMP, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for point in _top_mounts_below("/tmp"):
        target = FRESH_TMP + point.removeprefix("/tmp")
        os.makedirs(target, mode=0o755, exist_ok=True)
        _mount(point, target, None, MS_BIND | MS_REC)
    _mount(FRESH_TMP, "/tmp", None, MS_MOVE)


def _top_mounts_below(folder: str) -> list[str]:
    """The mount points below `folder` that no other mount point below it contains."""
    with open("/proc/self/mountinfo", "rb") as mountinfo:
        points = {_unescape(line.split()[4]) for line in mountinfo}
    below = sorted(p for p in points if p.startswith(folder + "/"))
    return [p for p in below if not any(p.startswith(other + "/") for other in below)]


def _unescape(field: bytes) -> str:
    """A mountinfo path: spaces, tabs, newlines and backslashes come as octal escapes."""
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field).decode(errors="surrogateescape")


def _take_identity(request: StageRequest, isolate: bool) -> None:
    """Become the stage's unprivileged uid (root grader), or shed every capability (user namespace)."""
    if request.uid is not None:
        os.setgroups([])
        os.setresgid(request.uid, request.uid, request.uid)
        os.setresuid(request.uid, request.uid, request.uid)  # leaving uid 0 clears every capability
    elif isolate:
        _drop_capabilities()
    _check(_LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _become_stage(request: StageRequest, output_fd: int, home: str) -> None:
    """The stage process's own set-up: its session, output, limits, folder and environment."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after any uid change, which clears it
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    resource.setrlimit(resource.RLIMIT_FSIZE, (request.file_size_bytes, request.file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (request.processes, request.processes))
    os.chdir(home)
    os.environ.clear()
    os.environ.update(request.env)


def _start_stage(request: StageRequest, output_fd: int, home: str) -> int:
    """Fork the process that runs the stage's argv; its set-up failing is reported on its output."""
    stage = os.fork()
    if stage == 0:
        try:
            _become_stage(request, output_fd, home)
        except BaseException:  # noqa: BLE001
            os.write(output_fd, traceback.format_exc().encode())
            os._exit(125)
        _run_argv(request.argv)
    os.close(output_fd)
    return stage


def _init(request: StageRequest, output_fd: int, status_fd: int) -> NoReturn:
    """PID 1 of the stage's namespaces: build its view, take its identity, start it, reap until it ends.

    The stage itself runs as PID 2, so signals it sends itself behave as anywhere else; when this
    process ends, the kernel ends everything left in the namespace.
    """
    try:
        _enter_private_view(request)
        _take_identity(request, isolate=True)
    except BaseException:  # noqa: BLE001
        os.write(output_fd, traceback.format_exc().encode())
        os._exit(125)
    stage = _start_stage(request, output_fd, STAGE_HOME)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == stage:
            os.write(status_fd, str(os.waitstatus_to_exitcode(status)).encode())
            os._exit(0)


def _run_argv(argv: list[str]) -> NoReturn:
    """Run `argv` as `python ARGV...` would, then end the process without interpreter teardown."""
    code = 0
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        elif argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path.insert(0, "")
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - the host's own code
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - reported like the interpreter would
        traceback.print_exc()
        code = 1
    exit_now(code)


def _end_descendants() -> None:
    """Kill whatever the stage left running (the rlimits fallback, where no PID namespace does it)."""
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            process.kill()
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, 0):
            pass


def _keeper(request: StageRequest, output_fd: int, status_fd: int, isolate: bool) -> NoReturn:
    """The zygote's child that starts one stage and stays until it has ended (see the module docstring)."""
    try:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if isolate:
            _check(_LIBC.unshare(STAGE_NAMESPACES), "unshare")
            init = os.fork()
            if init == 0:
                _init(request, output_fd, status_fd)
            os.close(output_fd)
            os.close(status_fd)  # the init reports the stage's end; if it is killed, nobody does (-9)
            os.waitpid(init, 0)
        else:
            _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # the stage's orphans come back here to be ended
            _take_identity(request, isolate=False)
            stage = _start_stage(request, output_fd, request.workdir)
            _, status = os.waitpid(stage, 0)
            _end_descendants()
            os.write(status_fd, str(os.waitstatus_to_exitcode(status)).encode())
    finally:
        os._exit(0)


def _serve(control: socket.socket, isolate: bool) -> None:
    while True:
        message, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, 1)
        if not message:
            return  # the host closed the channel: this sandbox is done
        request = StageRequest.model_validate_json(message)
        status_read, status_write = os.pipe()
        keeper = os.fork()
        if keeper == 0:
            control.close()
            os.close(status_read)
            _keeper(request, fds[0], status_write, isolate)
        for fd in (fds[0], status_write):
            os.close(fd)
        control.send(StageStarted().model_dump_json().encode())
        os.waitpid(keeper, 0)
        with os.fdopen(status_read, "rb") as status:
            text = status.read().decode() or "-9"
        control.send(StageExited(returncode=int(text)).model_dump_json().encode())


def main(control_fd: int, isolate: bool, preload: list[str]) -> None:
    for name in preload:
        importlib.import_module(name)
    _LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no stage may read this process's memory or trace it
    control = socket.socket(fileno=control_fd)
    control.send(SandboxReady().model_dump_json().encode())
    with contextlib.suppress(ConnectionError):
        _serve(control, isolate)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3:])
    exit_now()
