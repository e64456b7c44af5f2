"""The hidden checks and the framework tests share the grader's pytest plugin, and one reference grading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["grader.pytest_plugin"]
GRADER = str(Path(sys.executable).with_name("grader"))


@pytest.fixture(scope="session")
def check_solutions(data_root: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`grader check-solutions` on the real data, once per session: its reports are shared by the tiers."""
    out = tmp_path_factory.mktemp("check-solutions")
    completed = subprocess.run([GRADER, "check-solutions", "--out", str(out), "--data-dir", str(data_root),
                                "--device", "cpu"], capture_output=True, text=True, timeout=2400)
    return out, completed
