"""A batch killed with SIGKILL part-way and rerun ends with every report exactly once, none graded twice; Ctrl-C
says that it finishes the gradings in progress."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import psutil
import pytest

from grader.config import load_assignment
from grader.models import SIMILARITY_DIR

pytestmark = pytest.mark.slow
GRADER = str(Path(sys.executable).with_name("grader"))


RESUMED = ("a1_dataset", "a2_ffn", "a3_cnn")  # one of each kind the batch resumes; the others only add minutes


def build_class(root: Path) -> dict[str, Path]:
    """Four submissions per assignment: the reference as folder, zip and .py, and the stub."""
    folders = {}
    for assignment_id in RESUMED:
        assignment = load_assignment(assignment_id)
        folder = root / assignment_id
        folder.mkdir(parents=True)
        shutil.copytree(assignment.solution_dir, folder / "ref_folder")
        with zipfile.ZipFile(folder / "ref_zip.zip", "w") as archive:
            for name in assignment.submission.files:
                archive.write(assignment.solution_dir / name, name)
        shutil.copy(assignment.solution_dir / assignment.submission.files[0], folder / "ref_single.py")
        shutil.copytree(assignment.folder, folder / "stub", ignore=shutil.ignore_patterns("tests", "*.md", "*.toml"))
        folders[assignment_id] = folder
    return folders


def batch_script(folders: dict[str, Path], out: Path) -> list[str]:
    commands = [shlex.join([GRADER, "batch", a, str(f), "--out", str(out / a), "--workers", "2", "--plain"])
                for a, f in folders.items()]
    return ["bash", "-c", " && ".join(commands)]


def reports(out: Path) -> dict[Path, float]:
    return {p: p.stat().st_mtime_ns for p in out.glob("*/*/report.json")}


def alive_after(pids: list[int], seconds: float) -> list[int]:
    """The processes of `pids` still running after up to `seconds` (zombies count as gone)."""
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + seconds
    while True:
        alive = [pid for pid in pids if running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_sigkill_mid_batch_then_rerun(tmp_path: Path, synthetic_cifar: Path) -> None:
    folders = build_class(tmp_path / "class")
    out = tmp_path / "out"
    env = os.environ | {"GRADER_DATA_DIR": str(synthetic_cifar), "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    script = batch_script(folders, out)
    first = subprocess.Popen(script, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(reports(out)) < 5 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    tree = [first.pid, *(c.pid for c in psutil.Process(first.pid).children(recursive=True))]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not alive_after(tree, seconds=10), "the sandboxes die with the grader (their parent-death signals)"
    before = reports(out)
    assert 5 <= len(before) < 12, "the kill should land part-way through the batch"

    rerun = subprocess.run(script, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = reports(out)
    assert len(after) == 12
    assert all(after[path] == mtime for path, mtime in before.items()), "a finished report was graded again"
    assert rerun.stdout.count("(already graded)") == len(before)
    for assignment_id, folder in folders.items():
        students = sorted(p.name for p in (out / assignment_id).iterdir()
                          if p.is_dir() and p.name != SIMILARITY_DIR)
        assert students == sorted(p.name.split(".")[0] for p in folder.iterdir())
        rows = (out / assignment_id / "grades.csv").read_text().splitlines()[1:]
        assert sorted(row.split(",")[0] for row in rows) == students
    assert not list(out.rglob("*.tmp")), "no half-written file is left behind"


def test_ctrl_c_says_it_finishes_the_gradings_in_progress(tmp_path: Path, synthetic_cifar: Path) -> None:
    assignment = load_assignment("a2_ffn")
    folder = tmp_path / "class"
    folder.mkdir()
    for student in ("ann", "bob", "cy"):
        shutil.copy(assignment.solution_dir / "ffn.py", folder / f"{student}.py")
    out = tmp_path / "out"
    env = os.environ | {"GRADER_DATA_DIR": str(synthetic_cifar), "GRADER_CACHE_DIR": str(tmp_path / "cache")}
    command = [GRADER, "batch", "a2_ffn", str(folder), "--out", str(out), "--workers", "1", "--plain"]
    batch = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "ann" / "report.json").exists() and batch.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(batch.pid, signal.SIGINT)  # what a terminal sends the whole foreground group on Ctrl-C
    _, stderr = batch.communicate(timeout=300)

    assert batch.returncode != 0
    assert "rerun the same command to grade the rest" in stderr
    assert "internal error" not in stderr, "one Ctrl-C must not break the grading in progress"
    assert (out / "bob" / "report.json").exists(), "the grading in progress when Ctrl-C came was finished"
    assert not (out / "cy").exists(), "no grading starts after Ctrl-C"
