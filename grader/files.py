"""Writing files atomically, and trimming text to what a report keeps: one helper each, for every stage.

Importable inside the sandbox (no dependency beyond the standard library).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

DETAILS_CHARS = 4000  # output or traceback a report keeps per failure or check: its tail says the most


def trim(text: str, limit: int = DETAILS_CHARS) -> str:
    """The last `limit` characters of `text`."""
    return text[-limit:]


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A binary file that replaces `path` only once it is completely written and synced; readers never see a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)  # mkstemp makes 0600; reports and caches are read by other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    with atomic_file(path) as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def clear_stale_temps(folder: Path) -> None:
    """Remove the temp files `atomic_file` leaves when the grader is killed mid-write."""
    for stale in Path(folder).glob(".*.tmp"):
        stale.unlink(missing_ok=True)
