"""The sandbox: limits, isolation and clean-up, in both modes (bubblewrap and the rlimits fallback).

Each test starts a warm sandbox of its own (without preloads, so it starts in a blink) and runs stages
in it, as the pipeline does; the warm process's own isolation (a stage cannot reach it, a killed
stage leaves it serving, nothing one submission writes reaches the next) is tested here too.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from grader import bubblewrap, sandbox
from grader.errors import GraderError
from grader.paths import COURSE_ROOT_ENV, PACKAGE_DIR, checks_root, solutions_dir
from grader.sandbox import Sandbox, SandboxResult, Stage, StageLimits
from tests.framework.test_course_root import make_course

MODES = ["bubblewrap", "rlimits"]
# A checkout or virtualenv below /tmp is bound into every stage's fresh /tmp; these are its top folders there.
BOUND_IN_TMP = sorted({path.relative_to("/tmp").parts[0] for path in bubblewrap.interpreter_paths()
                       if path.is_relative_to("/tmp")})
LIMITS = {"wall_seconds": 20.0, "memory_mb": 1024, "processes": 64, "file_size_mb": 16, "output_kb": 64}


def bubblewrap_available() -> bool:
    """Whether bwrap is installed and can create namespaces here, regardless of GRADER_SANDBOX."""
    forced = os.environ.pop(bubblewrap.SANDBOX_ENV, None)
    bubblewrap.works.cache_clear()
    try:
        return bubblewrap.works()
    finally:
        if forced is not None:
            os.environ[bubblewrap.SANDBOX_ENV] = forced
        bubblewrap.works.cache_clear()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Forces one sandbox mode; the bubblewrap variant skips without bwrap, except under CI=true."""
    if request.param == "bubblewrap" and not bubblewrap_available():
        reason = "bubblewrap (bwrap) is missing or cannot create namespaces here"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    monkeypatch.setenv(bubblewrap.SANDBOX_ENV, request.param)
    bubblewrap.works.cache_clear()
    yield request.param
    bubblewrap.works.cache_clear()


bubblewrap_only = pytest.mark.parametrize("mode", ["bubblewrap"], indirect=True)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader gives each stage a uid of its own")


@pytest.fixture
def box(mode: str) -> Iterator[Sandbox]:
    with Sandbox() as warm:
        yield warm


@pytest.fixture
def marker() -> str:
    """A string put into a stage's processes, to find any of them that survive."""
    return f"grader-sandbox-test-{uuid.uuid4().hex}"


def run_python(box: Sandbox, code: str, sees: frozenset[Path] = frozenset(), **limits: float) -> SandboxResult:
    return box.run(Stage(["-c", code], box.stage_dir(f"stage-{uuid.uuid4().hex[:8]}"),
                         StageLimits(**(LIMITS | limits)), sees=sees))


def last_json(result: SandboxResult) -> object:
    return json.loads(result.output.strip().splitlines()[-1])


def survivors(marker: str, grace: float = 3.0) -> list[str]:
    """Command lines of live processes carrying `marker`, after giving killed ones `grace` seconds to die."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for process in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if marker in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(cmdline[:120])
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_stage_runs_its_argv_like_python_and_reports_the_exit_code(box: Sandbox) -> None:
    result = run_python(box, "import sys; print('hello'); sys.exit(3)")
    assert result.returncode == 3 and result.output == "hello\n"
    crashed = run_python(box, "raise ValueError('boom')")
    assert crashed.returncode == 1 and "ValueError: boom" in crashed.output


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_network_is_cut_under_bubblewrap_only(mode: str, box: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = ("import socket\n"
                f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\n"
                "except OSError as exc:\n    print('BLOCKED', exc)\n")
        result = run_python(box, code)
    # The rlimits fallback keeps the network (its report says so): that control proves the probe works.
    assert ("CONNECTED" if mode == "rlimits" else "BLOCKED") in result.output, result.output


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_only_bound_paths_are_visible_under_bubblewrap(mode: str, tmp_path: Path, box: Sandbox) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("answer key\n")
    hidden = [secret, checks_root(), solutions_dir(), *[p for p in (Path("/work/shared"),) if p.exists()]]
    paths = list(map(str, hidden))
    result = run_python(box, f"import json, os; print(json.dumps([os.path.exists(p) for p in {paths!r}]))")
    assert last_json(result) == [mode == "rlimits"] * len(hidden), result.output


def test_work_dir_is_writable(box: Sandbox) -> None:
    workdir = box.stage_dir("writable")
    result = box.run(Stage(["-c", "open('made-inside.txt', 'w').write('hi')"], workdir, StageLimits(**LIMITS)))
    assert result.returncode == 0, result.output
    assert (workdir / "made-inside.txt").read_text() == "hi"


@bubblewrap_only
def test_grader_package_is_read_only(box: Sandbox) -> None:
    target = PACKAGE_DIR / f"pwned-{uuid.uuid4().hex}.py"
    try:
        result = run_python(box, f"open({str(target)!r}, 'w').write('x')")
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
    assert result.returncode != 0 and ("Read-only" in result.output or "Permission" in result.output)


def test_infinite_loop_is_killed_on_time(box: Sandbox) -> None:
    result = run_python(box, "while True:\n    pass", wall_seconds=2)
    assert result.timed_out and result.returncode != 0
    assert 2 <= result.seconds <= 2 + 1.5


def test_cpu_time_limit_counts_work_not_waiting(box: Sandbox) -> None:
    spin = run_python(box, "while True:\n    pass", cpu_seconds=1.0)
    assert spin.out_of_cpu and not spin.timed_out and 1.0 <= spin.cpu_seconds <= 1.5
    sleep = run_python(box, "import time; time.sleep(2.5)", cpu_seconds=1.0)
    assert sleep.returncode == 0 and not sleep.out_of_cpu and sleep.cpu_seconds < 0.5


def test_unbounded_allocation_is_killed_as_out_of_memory(box: Sandbox) -> None:
    code = "blocks = []\nwhile True:\n    blocks.append(b'\\1' * 10**7)"  # touched pages, unlike bytes(n)
    result = run_python(box, code, memory_mb=200)
    assert result.out_of_memory and not result.timed_out and result.returncode != 0
    assert result.seconds < 10


def test_fork_bomb_is_contained(box: Sandbox, marker: str) -> None:
    # Bounded at 2**10 processes, far above the limit, so a sandbox bug cannot take the machine down.
    code = (f"import os, sys, time\nsys.argv[0] = {marker!r}\n"
            "for _ in range(10):\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
            f"os.execvp('sleep', [{marker!r}, '300'])")
    result = run_python(box, code, processes=16, wall_seconds=30)
    assert result.too_many_processes and result.returncode != 0
    assert result.seconds < 10
    assert survivors(marker) == []


def test_background_child_does_not_outlive_the_stage(box: Sandbox, marker: str) -> None:
    code = f"import subprocess; subprocess.Popen([{marker!r}, '300'], executable='sleep'); print('started')"
    result = run_python(box, code)
    assert result.returncode == 0 and "started" in result.output, result.output
    assert survivors(marker) == []


def test_detached_child_does_not_outlive_the_stage(box: Sandbox, marker: str) -> None:
    # A new session leaves the process group: the PID namespace, or the keeper as subreaper, catches it.
    code = (f"import subprocess; subprocess.Popen([{marker!r}, '300'], executable='sleep', start_new_session=True)"
            "; print('started')")
    result = run_python(box, code)
    assert result.returncode == 0 and "started" in result.output, result.output
    assert survivors(marker) == []


def test_output_keeps_head_and_tail(box: Sandbox) -> None:
    result = run_python(box, "print('FIRST'); print('x' * 100_000); print('LAST')", output_kb=4)
    assert result.returncode == 0
    assert result.output.startswith("FIRST\n") and result.output.endswith("LAST\n")
    assert "dropped" in result.output and len(result.output) < 4096 + 100


def test_file_size_limit(box: Sandbox) -> None:
    workdir = box.stage_dir("big")
    result = box.run(Stage(["-c", "open('big.bin', 'wb').write(bytes(2 * 2**20))"], workdir,
                           StageLimits(**(LIMITS | {"file_size_mb": 1}))))
    assert result.returncode != 0 and "File too large" in result.output, result.output
    assert (workdir / "big.bin").stat().st_size <= 2**20


def test_no_core_dumps(box: Sandbox) -> None:
    result = run_python(box, "import resource; print(resource.getrlimit(resource.RLIMIT_CORE))")
    assert result.output.strip() == "(0, 0)"


@pytest.fixture
def folder_in_tmp() -> Iterator[Path]:
    """A folder right below /tmp that the stages' users may read, as a checkout cloned into /tmp is."""
    folder = Path(tempfile.mkdtemp(prefix="grader-checkout-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / "module.py").write_text("ANSWER = 42\n")
    (folder / "module.py").chmod(0o644)
    yield folder
    shutil.rmtree(folder)


@bubblewrap_only
def test_what_the_sandbox_binds_below_tmp_stays_visible_and_read_only(mode: str, folder_in_tmp: Path) -> None:
    # Found by running CI from a clone in /tmp: each stage's fresh /tmp hid the grader's own package.
    config = sandbox.SandboxConfig(mounts=(sandbox.Mount(folder_in_tmp, folder_in_tmp),))
    code = (f"import os, sys; sys.path.insert(0, {str(folder_in_tmp)!r}); import module; print(module.ANSWER)\n"
            f"try:\n    open({str(folder_in_tmp / 'written.py')!r}, 'w')\nexcept OSError as e:\n    print(e.errno)\n"
            "open('/tmp/mine', 'w').write('x'); print(sorted(os.listdir('/tmp')))")
    with Sandbox(config) as box:
        first, second = (run_python(box, code, sees=frozenset({folder_in_tmp})) for _ in range(2))
    expected = sorted(["mine", folder_in_tmp.name, *BOUND_IN_TMP])
    assert first.output.split("\n")[:3] == ["42", str(errno.EROFS), str(expected)], first.output
    assert second.output == first.output, "the next stage's /tmp is fresh again, with the same folder bound"
    assert not (folder_in_tmp / "written.py").exists()


@bubblewrap_only
def test_a_stage_sees_only_the_mounts_it_needs(mode: str, tmp_path: Path) -> None:
    """Training data is mounted in the sandbox, yet the evaluation stage (and every stage that does not ask) cannot
    read it: the evaluation must not be able to train any further."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.npy").write_text("the training labels")
    for path in (tmp_path, data, data / "labels.npy"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    folder, file = Path("/data/train"), Path("/data/labels.npy")
    config = sandbox.SandboxConfig(mounts=(sandbox.Mount(data, folder), sandbox.Mount(data / "labels.npy", file)))
    code = (f"import os; print(sorted(os.listdir({str(folder)!r})), repr(open({str(file)!r}).read()))\n"
            f"try:\n    open({str(file)!r}, 'w').write('x')\nexcept OSError as e:\n    print(e.errno)")
    both = frozenset({folder, file})
    with Sandbox(config) as box:
        seeing, blind, again = run_python(box, code, sees=both), run_python(box, code), run_python(box, code, sees=both)
    assert seeing.output.split("\n")[0] == "['labels.npy'] 'the training labels'", seeing.output
    assert again.output == seeing.output, "hiding a mount from one stage hides it from no other"
    assert blind.output.split("\n")[:2] == ["[] ''", str(errno.EROFS)], blind.output


@bubblewrap_only
def test_tmp_is_the_stages_own_and_capped(box: Sandbox) -> None:
    first = run_python(box, "open('/tmp/left-behind', 'w').write('x'); import os; print(sorted(os.listdir('/tmp')))")
    assert first.output.strip() == str(sorted(["left-behind", *BOUND_IN_TMP]))
    second = run_python(box, "import os; print(sorted(os.listdir('/tmp')))")
    assert second.output.strip() == str(BOUND_IN_TMP), "each stage starts with an empty /tmp"
    full = run_python(box, "open('/tmp/big', 'wb').write(bytes(3 * 2**20))", file_size_mb=2)
    assert full.returncode != 0 and ("No space left" in full.output or "File too large" in full.output), full.output


@bubblewrap_only
@root_only
def test_each_stage_runs_as_its_own_unprivileged_uid(box: Sandbox) -> None:
    code = "import os; print(os.getuid(), os.getgid(), os.getgroups())"
    uids = [run_python(box, code).output.split()[0] for _ in range(2)]
    assert len(set(uids)) == 2 and all(int(uid) >= sandbox.SANDBOX_UID_BASE for uid in uids), uids
    caps = run_python(box, "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    assert int(caps.output.strip(), 16) == 0, "no capability survives the uid switch"


@bubblewrap_only
def test_a_stage_cannot_see_signal_trace_or_read_the_warm_process(box: Sandbox) -> None:
    run_python(box, "pass")  # the warm process is up and known
    zygote = box._zygote
    code = """
import ctypes, json, os, signal
libc = ctypes.CDLL(None, use_errno=True)
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
probes = {'pids': pids, 'ptrace': [], 'mem': []}
for pid in range(1, 64):
    if pid == os.getpid():
        continue
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        probes['ptrace'].append(pid)
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signal_number)
        except OSError:
            pass
for path in os.listdir('/proc'):
    if path.isdigit() and int(path) != os.getpid():
        try:
            open(f'/proc/{path}/mem', 'rb').read(1); probes['mem'].append(path)
        except OSError:
            pass
print(json.dumps(probes))
"""
    probes = last_json(run_python(box, code))  # printed after the signals: the stage survived them too
    # It sees itself and the grader's namespace init (pid 1), which ignores its signals; the warm process not at all.
    assert probes == {"pids": [1, 2], "ptrace": [], "mem": []}, probes
    assert zygote.is_running() and run_python(box, "print('still serving')").output == "still serving\n"


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_a_killed_stage_leaves_the_warm_process_serving(mode: str, box: Sandbox) -> None:
    assert run_python(box, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)").killed_by == "SIGKILL"
    assert run_python(box, "while True:\n    pass", wall_seconds=1).timed_out
    assert run_python(box, "print('next')").output == "next\n"


def test_a_kept_sandbox_outlives_the_thread_that_started_it(mode: str) -> None:
    # Found by the hostile suite: the parent-death signal follows the thread that forked, not the process.
    config = sandbox.SandboxConfig(preload=("json",))
    started: list[int] = []

    def first_submission() -> None:
        with sandbox.warm_sandbox(config, reuse=True) as box:
            run_python(box, "pass")
            started.append(box._zygote.pid)

    worker = threading.Thread(target=first_submission)
    worker.start()
    worker.join()
    time.sleep(0.5)
    with sandbox.warm_sandbox(config) as again:
        assert run_python(again, "print('again')").output == "again\n"
        assert again._zygote.pid == started[0], "the same warm process serves the next submission"


LEAVE_TRACES = """
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
for folder in ('/sandbox', '/tmp', '/dev/shm', os.environ['HOME']):
    open(os.path.join(folder, 'left-behind'), 'w').write('secret')
assert libc.shmget(4242, 4096, 0o1666) >= 0  # IPC_CREAT | 0666: a System V segment with a well-known key
subprocess.Popen([sys.argv[1], '300'], executable='sleep', start_new_session=True)
print('left traces')
"""
LOOK_FOR_TRACES = """
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
print(json.dumps({'sandbox': os.listdir('/sandbox'), 'tmp': sorted(os.listdir('/tmp')), 'shm': os.listdir('/dev/shm'),
                  'stages': os.listdir('/stages'), 'segment': libc.shmget(4242, 0, 0),
                  'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}))
"""


@bubblewrap_only
def test_nothing_one_submission_leaves_reaches_the_next_in_the_same_sandbox(mode: str, marker: str) -> None:
    config = sandbox.SandboxConfig()
    with sandbox.warm_sandbox(config, reuse=True) as first:
        traces = first.run(Stage(["-c", LEAVE_TRACES, marker], first.stage_dir("a"), StageLimits(**LIMITS)))
        assert traces.output.strip() == "left traces", traces.output
        warm = first._zygote.pid
    with sandbox.warm_sandbox(config, reuse=True) as second:
        assert second._zygote.pid == warm, "the same warm process serves the next submission"
        seen = last_json(run_python(second, LOOK_FOR_TRACES))
    assert seen == {"sandbox": [], "tmp": BOUND_IN_TMP, "shm": [], "stages": [], "segment": -1, "processes": [1, 2]}
    assert survivors(marker) == []
    sandbox.close_idle_sandboxes()


@bubblewrap_only
@root_only
def test_a_mount_the_stage_users_cannot_read_is_a_grader_error(tmp_path: Path, mode: str) -> None:
    # Found by the a1 cases: a private data dir (pytest's temp dirs are 0700) silently failed every real-data check.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(GraderError, match=f"{private} is not readable by other users"):
        Sandbox(sandbox.SandboxConfig(mounts=(sandbox.Mount(private, Path("/data/x")),)))


@bubblewrap_only
def test_a_linked_course_root_shows_its_public_files_and_checks_never_its_solutions(mode: str,
                                                                                  tmp_path: Path) -> None:
    course = make_course(tmp_path / "course")
    link = tmp_path / "link"
    link.symlink_to(course, target_is_directory=True)
    checks = course / "tests" / "a1_dataset"
    config = sandbox.SandboxConfig(mounts=(sandbox.Mount(checks, checks),), course_root=course)
    paths = [course / "assignments" / "a1_dataset" / "assignment.toml", checks / "test_dataset.py",
             course / "solutions" / "a1_dataset", link]
    code = (f"import json, os; print(json.dumps([os.environ['{COURSE_ROOT_ENV}'], "
            f"*map(os.path.exists, {list(map(str, paths))!r})]))")
    with Sandbox(config) as box:
        result = run_python(box, code, sees=frozenset({checks}))
    assert last_json(result) == [str(course), True, True, False, False], result.output
