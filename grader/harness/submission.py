"""Importing the submission, and ending the process: what every in-sandbox entry point shares."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from grader.files import trim


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


def trimmed_traceback(exc: BaseException) -> str:
    """The end of a traceback, as much as a report keeps."""
    return trim("".join(traceback.format_exception(exc)))


def exit_now(code: int = 0) -> NoReturn:
    """End the stage without interpreter teardown: threads or exit hooks a submission left must not hold it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
