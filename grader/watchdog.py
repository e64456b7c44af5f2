"""Watching a stage from the host: its process tree's memory, process count and CPU time, and its output."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading

import psutil


class StageTree:
    """The running stage's processes as the host sees them: zygote -> keeper -> [namespace init ->] stage -> ..."""

    def __init__(self, zygote: psutil.Process, isolated: bool) -> None:
        self.zygote, self.isolated = zygote, isolated
        self.members: dict[int, psutil.Process] = {}
        self.cpu = 0.0

    def _keepers_children(self) -> list[psutil.Process]:
        try:
            return [child for keeper in self.zygote.children() for child in keeper.children()]
        except psutil.Error:
            return []

    def _current(self) -> list[psutil.Process]:
        """The stage process and its descendants (not the grader's own namespace init above it)."""
        try:
            roots = self._keepers_children()
            if self.isolated:
                roots = [stage for init in roots for stage in init.children()]
            members = [m for root in roots for m in (root, *root.children(recursive=True))]
        except psutil.Error:
            return []
        for member in members:
            self.members.setdefault(member.pid, member)
        return members

    def usage(self, memory_mb: int) -> tuple[float, int, float]:
        """Resident MB, process count and CPU seconds of the stage's tree.

        RSS counts the pages that forked processes share once in every process, so a tree over the limit is
        measured again by proportional set size (slower to read). CPU time is what the live processes used
        plus what they reaped, so it only grows as processes come and go.
        """
        members = self._current()
        sizes = [size for member in members if (size := _memory_of(member, "rss")) is not None]
        resident = sum(sizes) / 2**20
        if resident > memory_mb and len(sizes) > 1:
            resident = sum(size for member in members if (size := _memory_of(member, "pss")) is not None) / 2**20
        self.cpu = max(self.cpu, sum(_cpu_of(member) for member in members))
        return resident, len(sizes), self.cpu

    def kill(self) -> None:
        """SIGKILL the stage: its namespace init (which ends the namespace), its processes and their groups."""
        for member in [*self._keepers_children(), *self._current()]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(member.pid, signal.SIGKILL)
        for member in self.members.values():
            with contextlib.suppress(psutil.Error):
                member.kill()  # psutil refuses a PID that was reused since it was seen


def _memory_of(member: psutil.Process, kind: str) -> int | None:
    """`rss` or `pss` bytes of one process; None once it is gone."""
    try:
        info = member.memory_full_info() if kind == "pss" else member.memory_info()
    except psutil.Error:
        return None
    return getattr(info, kind, info.rss)


def _cpu_of(member: psutil.Process) -> float:
    try:
        times = member.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


class BoundedOutput:
    """Drains a pipe in a thread, keeping the first and last `limit/2` bytes."""

    def __init__(self, pipe: io.BufferedReader, limit: int) -> None:
        self._pipe, self._half = pipe, max(limit // 2, 1)
        self._head, self._tail, self._dropped = bytearray(), bytearray(), 0
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with self._pipe:
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


