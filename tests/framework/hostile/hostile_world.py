"""Turns the committed hostile cases into a class of submissions, and watches what grading them does.

A case is a file or folder under `submissions/<assignment>/`: `*.patch.py` is appended to the
reference solution's module (later definitions win), `*.in` files lose that suffix (so no live
conftest.py or pytest.ini sits in this repository), anything else is copied as is.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import psutil

from grader.config import Assignment

SUBMISSIONS = Path(__file__).parent / "submissions"
SOLO = Path(__file__).parent / "solo"  # cases graded on their own, outside the class's batch
PATCH = ".patch.py"
TEMPLATE = ".in"


def build_class(assignment: Assignment, dest: Path, extras: dict[str, dict[str, str]]) -> Path:
    """Every committed case of `assignment` as a submission in `dest`; `extras[case]` adds generated files."""
    dest.mkdir(parents=True)
    for source in sorted((SUBMISSIONS / assignment.id).iterdir()):
        built = _build_case(assignment, source, dest)
        for name, text in extras.get(built.name, {}).items():
            (built / name).write_text(text)
    return dest


def _build_case(assignment: Assignment, source: Path, dest: Path) -> Path:
    name = source.name
    if source.is_dir():
        folder = dest / name
    elif name.endswith(PATCH):
        folder = dest / name.removesuffix(PATCH)
    else:
        target = dest / name.removesuffix(TEMPLATE)
        shutil.copy(source, target)
        return target
    folder.mkdir()
    for path in sorted(source.iterdir()) if source.is_dir() else [source]:
        _place(assignment, path, folder)
    return folder


def _place(assignment: Assignment, path: Path, folder: Path) -> None:
    module_file = assignment.submission.files[0]
    if path.name.endswith(PATCH):
        reference = (assignment.solution_dir / module_file).read_text()
        (folder / module_file).write_text(f"{reference}\n\n# ---- the hostile case ----\n{path.read_text()}")
    else:
        shutil.copy(path, folder / path.name.removesuffix(TEMPLATE))


def reference_with(assignment: Assignment, text: str) -> bytes:
    """The reference module with `text` appended, as UTF-8."""
    module_file = assignment.submission.files[0]
    return (assignment.solution_dir / module_file).read_text().encode() + text.encode()


def write_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return path


def write_zip_bomb(path: Path, name: str, megabytes: int) -> Path:
    """A zip whose one member inflates to `megabytes` of zeros from a few hundred kilobytes."""
    with (zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
          archive.open(name, "w") as member):
        for _ in range(megabytes):
            member.write(bytes(2**20))
    return path


def write_tar_link(path: Path, name: str, target: str) -> Path:
    """A .tar.gz whose one member is a hard link to `target`."""
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        archive.addfile(info, io.BytesIO())
    return path


def tree_hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (bytecode caches aside), by path."""
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for root in roots
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def survivors(marker: str, grace: float = 3.0) -> list[str]:
    """Command lines of live processes carrying `marker`, after giving killed ones `grace` seconds to go."""
    deadline = time.monotonic() + grace
    while True:
        found = [" ".join(p.info["cmdline"] or [])[:120] for p in psutil.process_iter(["cmdline", "status"])
                 if marker in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def live_children() -> list[str]:
    """Processes this test process started that are still running (zombies are already dead)."""
    return [f"{p.pid} {p.name()}" for p in psutil.Process().children(recursive=True)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


class Listener:
    """A TCP server outside the sandbox, on every interface, that counts the connections it accepts."""

    def __init__(self) -> None:
        self._server = socket.create_server(("0.0.0.0", 0))  # noqa: S104 - the control the sandbox must not reach
        self.port = self._server.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            connection.close()

    def addresses(self) -> list[list]:
        """(host, port) of this server for every IPv4 address of the machine."""
        hosts = {a.address for nic in psutil.net_if_addrs().values() for a in nic if a.family == socket.AF_INET}
        return [[host, self.port] for host in sorted(hosts)]

    def close(self) -> None:
        self._server.close()


class PeakMemory:
    """Samples the memory of this process's descendants every 20 ms, keeping the peak (MB): their proportional set
    size, which counts the pages a forked stage shares with its warm sandbox once, not once per process."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            total = 0
            for process in psutil.Process().children(recursive=True):
                try:
                    total += process.memory_full_info().pss
                except psutil.Error:
                    continue
            self.peak_mb = max(self.peak_mb, total / 2**20)
