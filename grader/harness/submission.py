"""Importing the submission and writing results: what every in-sandbox entry point shares."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn


def import_submission(folder: Path, module_name: str) -> ModuleType:
    """Import `module_name` from `folder` under its own name, with `folder` first on sys.path."""
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(module_name, folder / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_name}.py from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def read_events(path: Path) -> list[dict]:
    """The JSON-lines records of a stage's event file that carry an "event" key; malformed lines are skipped.

    These files are within the submission's reach, so nothing in them is trusted to be well formed.
    """
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def trimmed_traceback(exc: BaseException) -> str:
    """The end of a traceback, as much as a report keeps."""
    return "".join(traceback.format_exception(exc))[-4000:]


def exit_now(code: int = 0) -> NoReturn:
    """End the stage without interpreter teardown: threads or exit hooks a submission left must not hold it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def write_json(path: Path, record: dict) -> None:
    """Write `record` to `path` atomically."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(record, tmp)
    os.replace(tmp.name, path)
