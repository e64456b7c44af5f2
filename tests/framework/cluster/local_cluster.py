"""Several real Ray nodes on one machine, for the cluster tests and benchmark: `ray start` processes, ended by PID.

The nodes live in a private network namespace that holds only a loopback interface: Ray binds the servers of a
multi-node cluster to every interface, and there nothing outside this process (and what it starts) can reach
them. This process becomes the subreaper of every Ray process, so `close` finds each one as its descendant and
ends it by PID; `ray stop`, which ends every Ray process on the machine, is never used. Needs root (CAP_SYS_ADMIN)
for the namespace. The namespace belongs to the calling thread: start Ray drivers from that thread. While the
cluster lives, this process has RAY_AUTH_MODE=disabled (drivers it starts inherit it): nothing outside the
namespace can reach the nodes, so they need no token, whatever token file the machine holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil

CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
AUTH_MODE_ENV = "RAY_AUTH_MODE"
GCS_PORT = 6379  # the namespace is private, so Ray's default port is always free
START_SECONDS = 120  # one `ray start`, on a loaded machine
RAY = str(Path(sys.executable).with_name("ray"))
_libc = ctypes.CDLL(None, use_errno=True)


class ClusterUnavailable(RuntimeError):
    """Ray nodes cannot be started here (no root for the namespace, or `ray start` failed)."""


@dataclass(frozen=True)
class NodeSpec:
    """One node: its Ray node name, logical resources and extra environment (e.g. its GRADER_DATA_DIR)."""

    name: str
    cpus: int
    gpus: int = 0
    memory_mb: int = 16384  # logical: what Ray lets tasks ask for, not a limit
    object_store_mb: int = 100
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RayNode:
    spec: NodeSpec
    raylet_pid: int


class LocalCluster:
    """A head and worker nodes, each a `ray start` of its own, in a private network namespace."""

    def __init__(self) -> None:
        self._own_net = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths must fit
        if _libc.unshare(CLONE_NEWNET) != 0:
            why = os.strerror(ctypes.get_errno())
            os.close(self._own_net)
            shutil.rmtree(self.temp_dir)
            raise ClusterUnavailable(f"cannot make a private network namespace for Ray ({why}); it needs root")
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        _loopback_up()
        self._auth_mode = os.environ.get(AUTH_MODE_ENV)
        os.environ[AUTH_MODE_ENV] = "disabled"
        self.nodes: list[RayNode] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{GCS_PORT}"

    def add_node(self, spec: NodeSpec) -> RayNode:
        """Start the head (first call) or a node that joins it, and wait until it is up."""
        where = (["--head", "--port", str(GCS_PORT), "--include-dashboard=false", "--temp-dir", str(self.temp_dir)]
                 if not self.nodes else ["--address", self.address])
        argv = [RAY, "start", *where, "--node-ip-address", "127.0.0.1", "--node-name", spec.name,
                "--disable-usage-stats", "--num-cpus", str(spec.cpus), "--num-gpus", str(spec.gpus),
                "--memory", str(spec.memory_mb * 2**20), "--object-store-memory", str(spec.object_store_mb * 2**20)]
        env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"} | spec.env
        try:
            started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=START_SECONDS)
        except subprocess.TimeoutExpired:
            raise ClusterUnavailable(f"`ray start` of {spec.name} took over {START_SECONDS} s") from None
        if started.returncode != 0:
            raise ClusterUnavailable(f"`ray start` of {spec.name} failed: {started.stderr.strip()[-500:]}")
        node = RayNode(spec, self._raylet_pid(spec.name))
        self.nodes.append(node)
        return node

    def remove_node(self, node: RayNode) -> None:
        """Stop a node the way a machine shuts down: its raylet leaves the cluster, then ends its own processes."""
        os.kill(node.raylet_pid, signal.SIGTERM)
        os.waitpid(node.raylet_pid, 0)

    def kill_node(self, node: RayNode) -> None:
        """SIGKILL a node's raylet, as if its machine died; its other processes follow it on their own."""
        os.kill(node.raylet_pid, signal.SIGKILL)
        os.waitpid(node.raylet_pid, 0)  # an orphan of `ray start`, so this process's child

    def processes(self) -> list[psutil.Process]:
        """Every live process this cluster started: its nodes, their agents and workers."""
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in self._before and _alive(p)]

    def close(self) -> None:
        """End every process the cluster started by PID, then leave the namespace."""
        for _ in range(5):  # a raylet may fork a worker while it is being killed
            processes = self.processes()
            if not processes:
                break
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()
            psutil.wait_procs(processes, timeout=5)
        for child in psutil.Process().children():  # orphans came to this subreaper; reap the ones that ended
            if child.pid not in self._before:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, os.WNOHANG)
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 0)
        if self._auth_mode is None:
            os.environ.pop(AUTH_MODE_ENV, None)
        else:
            os.environ[AUTH_MODE_ENV] = self._auth_mode
        _libc.setns(self._own_net, CLONE_NEWNET)
        os.close(self._own_net)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _raylet_pid(self, name: str) -> int:
        for process in psutil.Process().children(recursive=True):
            try:
                if process.name() == "raylet" and f"--node-name={name}" in process.cmdline():
                    return process.pid
            except psutil.NoSuchProcess:
                continue
        raise ClusterUnavailable(f"`ray start` of {name} left no raylet")

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _loopback_up() -> None:
    """`ip link set lo up` for the calling thread's namespace, without needing iproute2."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        name, flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0)))
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", name, flags | IFF_UP))


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False

