"""The engine built as a wheel, installed into a fresh virtual environment, grades a course root outside this checkout.

No network: the wheel is built without build isolation (this environment's setuptools) and installed without
dependencies; the fresh environment sees this one's installed dependencies through a .pth line (which does not
activate this environment's editable install of the grader, so `import grader` finds the wheel's copy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from grader.paths import COURSE_ROOT_ENV
from grader.reports import read_report_json
from tests.framework.test_course_root import REPOSITORY, make_course

pytestmark = pytest.mark.slow
ENGINE_FILES = ("pyproject.toml", "README.md", "grader")
# A second assignment, written here by hand: no data, no training, one hidden check.
HELLO = {
    "assignments/h1_hello/assignment.toml": """
id = "h1_hello"
title = "Hello, course root"
version = "1.0.0"
seed = 0

[submission]
files = ["hello.py"]
module = "hello"
max_files = 5
max_total_mb = 1
max_file_mb = 1

[submission.api]
greet = { kind = "function", params = ["name"] }

[[checks]]
name = "greet"
title = "greet greets by name"
points = 10

[limits]
threads = 1
import_seconds = 30
check_seconds = 30
checks_total_seconds = 120
eval_seconds = 30
eval_cpu_seconds = 30
memory_mb = 2048
processes = 64
file_size_mb = 16
output_kb = 64

[similarity]
threshold = 0.4
kgram = 25
guarantee = 25
boilerplate_share = 0.25
boilerplate_min_submissions = 8
""",
    "assignments/h1_hello/hello.py": "def greet(name):\n    raise NotImplementedError\n",
    "solutions/h1_hello/hello.py": "def greet(name):\n    return f'Hello, {name}!'\n",
    "tests/h1_hello/test_hello.py": """import pytest


@pytest.mark.group("greet")
def test_greets_by_name(submission):
    assert submission.greet("Ada") == "Hello, Ada!"
""",
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip())


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in (COURSE_ROOT_ENV, "PYTHONPATH")}
    completed = subprocess.run([str(part) for part in argv], cwd=cwd, env=base | (env or {}), capture_output=True,
                               text=True, timeout=timeout)
    assert completed.returncode == 0, f"{argv}: {completed.stdout[-3000:]}{completed.stderr[-3000:]}"
    return completed


def build_wheel(tmp_path: Path) -> Path:
    """The engine's wheel, built from a copy of its sources (the checkout gets no build/ or egg-info)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ENGINE_FILES:
        copy = shutil.copytree if (REPOSITORY / name).is_dir() else shutil.copy
        copy(REPOSITORY / name, source / name)
    shutil.rmtree(source / "grader" / "__pycache__", ignore_errors=True)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", tmp_path / "dist", source, cwd=tmp_path)
    return next((tmp_path / "dist").glob("grader-*.whl"))


def fresh_environment(folder: Path, wheel: Path) -> Path:
    """A new virtual environment with the wheel installed; its bin/ folder."""
    run(sys.executable, "-m", "venv", "--without-pip", folder, cwd=folder.parent)
    python = folder / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=folder)
    Path(purelib.stdout.strip(), "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel,
        cwd=folder.parent)
    return folder / "bin"


def test_the_wheel_grades_a_course_outside_the_checkout(tmp_path: Path, synthetic_cifar: Path) -> None:
    course = make_course(tmp_path / "course")
    write_files(course, HELLO)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bin_dir = fresh_environment(tmp_path / "venv", build_wheel(tmp_path))
    where = run(bin_dir / "python", "-c", "import grader; print(grader.__file__)", cwd=elsewhere).stdout
    assert Path(where.strip()).is_relative_to(tmp_path / "venv"), f"the wheel's grader, not the checkout's: {where}"

    data = ["--data-dir", synthetic_cifar, "--device", "cpu"]
    checked = run(bin_dir / "grader", "--course-root", course, "check-solutions", "--out", elsewhere / "checked",
                  *data, "--plain", cwd=elsewhere)
    assert "Every reference solution earns full marks and every stub earns none." in checked.stdout
    assert sorted(p.name for p in (elsewhere / "checked").iterdir()) == ["a1_dataset", "h1_hello"]

    run(bin_dir / "grader", "grade", "a1_dataset", course / "solutions" / "a1_dataset", "--out", elsewhere / "graded",
        *data, "--quiet", cwd=elsewhere, env={COURSE_ROOT_ENV: str(course)})
    report = read_report_json(elsewhere / "graded" / "report.json")
    assert report.score.total == report.score.max_total == 100 and report.failures == []
