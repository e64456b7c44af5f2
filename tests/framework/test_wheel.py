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
from tests.framework.test_course_root import HELLO, REPOSITORY, make_course, write_files

pytestmark = pytest.mark.slow
ENGINE_FILES = ("pyproject.toml", "README.md", "grader")
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

    # grader new's templates are package data: the wheel writes a skeleton, and its notebook handout.
    for command in (["new", "a9_demo"], ["handout", "a9_demo"], ["handout", "a9_demo", "--check"]):
        run(bin_dir / "grader", "--course-root", course, *command, cwd=elsewhere)
    assert (course / "tests" / "a9_demo" / "test_demo.py").is_file()
    assert (course / "assignments" / "a9_demo" / "demo.ipynb").is_file()
