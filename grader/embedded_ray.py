"""Ray embedded in the grader's process (`--cluster local`): kept on this machine's loopback."""

from __future__ import annotations

import os

# Ray binds every network interface unless told this machine is the whole cluster; read once, when Ray is imported.
RAY_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def confine_embedded_ray(address: str) -> None:
    """With `local` (Ray embedded in this process) keep Ray on this machine's loopback; call before importing Ray."""
    if address == "local":
        os.environ.setdefault(RAY_SINGLE_MACHINE_ENV, "0")
