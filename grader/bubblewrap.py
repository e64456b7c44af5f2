"""Bubblewrap, the sandbox's outer wall: whether it works here, and the command that starts the warm process in it.

The warm process gets no network, its own PID namespace, a read-only view of only the interpreter, the grader
package, the assignments and the given mounts, and the stages' root at /stages; it keeps only the capabilities
it needs to build each stage's namespaces and switch its uid (see grader.harness.zygote).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError
from grader.harness.zygote import FRESH_TMP, STAGE_HOME, STAGES_ROOT
from grader.paths import PACKAGE_DIR

SANDBOX_ENV = "GRADER_SANDBOX"  # "bubblewrap" or "rlimits" forces a mode


@functools.cache
def works() -> bool:
    """Whether `bwrap` exists and can create namespaces here (it cannot in many containers)."""
    forced = os.environ.get(SANDBOX_ENV)
    if forced:
        return forced == "bubblewrap"
    if shutil.which("bwrap") is None:
        return False
    # /proc and /dev as the sandbox mounts them: some container profiles allow namespaces but not these.
    probe = ["bwrap", *namespace_flags(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def namespace_flags() -> list[str]:
    if os.geteuid() == 0:  # no user namespace: each stage switches to an unprivileged uid instead
        return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all"]


def command(mounts: list[tuple[Path, Path]], gpu_index: int | None, root: Path, python_args: list[str],
            public: Sequence[Path] = ()) -> list[str]:
    """`bwrap ... python ARGS`: `mounts` (host path, target) and the `public` folders (at their own paths)
    read-only, the GPU's devices, the stages' `root`."""
    argv = ["bwrap", *namespace_flags(), "--die-with-parent", "--new-session"]
    for name in ("usr", "etc/alternatives"):
        argv += ["--ro-bind-try", f"/{name}", f"/{name}"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", STAGE_HOME, "--dir", FRESH_TMP]
    binds = [(path, path) for path in interpreter_paths(public)] + mounts
    for parent in sorted({a for _, target in binds for a in target.parents if a != Path("/")}):
        argv += ["--perms", "0755", "--dir", str(parent)]  # bwrap would make them 0700 otherwise
    for source, target in binds:
        argv += ["--ro-bind", str(source), str(target)]
    if gpu_index is not None:
        for device in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", f"nvidia{gpu_index}"):
            argv += ["--dev-bind-try", f"/dev/{device}", f"/dev/{device}"]
    argv += ["--bind", str(root), STAGES_ROOT, "--chdir", "/"]
    # The zygote keeps only what it needs to build each stage's namespaces and switch its uid.
    argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SYS_ADMIN"]
    if os.geteuid() == 0:
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return [*argv, "--", sys.executable, *python_args]


def interpreter_paths(public: Sequence[Path] = ()) -> list[Path]:
    """The Python installation, the virtualenv, the package folders on sys.path (a .pth file may add another
    environment's), the grader's own package and the `public` folders, deduplicated."""
    packages = [Path(p) for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]
    candidates = [Path(sys.base_prefix), Path(sys.prefix), *packages, PACKAGE_DIR, *public]
    paths: list[Path] = []
    for path in sorted({p.resolve() for p in candidates}):
        if not str(path).startswith("/usr/") and not any(path.is_relative_to(p) for p in paths):
            paths.append(path)
    return paths


def require_readable_by_others(sources: list[Path]) -> None:
    """The stages' users own none of the mounted paths, so they read only what any user may read."""
    for source in sources:
        mode = source.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            raise GraderError(f"{source} is not readable by other users, so the sandbox cannot read it; "
                              f"run chmod -R a+rX {source}.")
