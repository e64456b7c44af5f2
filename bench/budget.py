"""check_accuracy.py's budget against the grader's: the same reference, the same data, the same machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Config, Result, Table, reference_copy
from grader.config import load_assignment
from grader.pipeline import GradeOptions, grade
from grader.sandbox import cpu_environment

NAME = "budget"
BUDGET_LINE = re.compile(r"^epoch (\d+): .*; budget used ([\d.]+) of", re.MULTILINE)
TARGET = 0.10  # the script's budget use within 10% of the grader's


@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """`count` busy loops beside the measurement: the busy machine where the budgets once differed 4-6x."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def script_budget(assignment_id: str, submission: Path, data_root: Path, work: Path) -> float:
    """The budget check_accuracy.py reports after its last epoch, started as a student would (no grader settings)."""
    assignment = load_assignment(assignment_id)
    handout = work / "handout"
    shutil.copytree(assignment.folder, handout)
    shutil.copy(submission / assignment.submission.files[0], handout)
    ours = cpu_environment(assignment.limits.threads, assignment.limits.cpu_kernels)
    env = {key: value for key, value in os.environ.items() if key not in ours}
    run = subprocess.run([sys.executable, "check_accuracy.py", str(data_root)], cwd=handout, env=env,
                         capture_output=True, text=True, check=True)
    return float(BUDGET_LINE.findall(run.stdout)[-1][1])


def measure(assignment_id: str, epochs: int, cfg: Config, hogs: int) -> dict[str, object]:
    assignment = load_assignment(assignment_id)
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp, cpu_hogs(hogs):
        work = Path(tmp)
        submission = reference_copy(assignment, work / "submission", epochs)
        report = grade(assignment, submission, work / "out", GradeOptions(data_root=cfg.data_root, student_id="b"))
        script = script_budget(assignment_id, submission, cfg.data_root, work)
    graders = report.training.budget_used
    return {"assignment": assignment_id, "epochs": epochs, "cpu hogs": hogs, "grader budget s": graders,
            "check_accuracy budget s": script, "difference": abs(script - graders) / graders}


def run(cfg: Config) -> Result:
    rows = [measure("a2_ffn", 3 if cfg.quick else 8, cfg, hogs) for hogs in (0, 2)]
    if not cfg.quick:
        rows.append(measure("a3_cnn", 1, cfg, 0))
    worst = max(row["difference"] for row in rows)
    verdict = "within" if worst <= TARGET else "beyond"
    return Result(NAME, [Table("budget used, grader vs check_accuracy.py", rows)],
                  [f"largest difference {worst:.1%}: {verdict} the {TARGET:.0%} target"])
