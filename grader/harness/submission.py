"""Importing the submission and writing results: what every in-sandbox entry point shares."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType


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


def write_json(path: Path, record: dict) -> None:
    """Write `record` to `path` atomically."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as tmp:
        json.dump(record, tmp)
    os.replace(tmp.name, path)
