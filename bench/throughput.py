"""Batch throughput: one-epoch copies of the a2 reference graded by `grader batch`, with 1 and 2 workers, and the
same batch graded by an older commit of the grader (`--baseline REV`), side by side in one run.

Both sides are timed as a TA runs them: the `grader batch` command of a virtualenv, this checkout's and the
baseline's (a git worktree of REV with its own `.venv`, made once by its own `make bootstrap` and kept in
`.bench-baseline/REV/`), each with its own defaults for threads and workers.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table, reference_copy
from grader.config import load_assignment

NAME = "batch"
TARGET_SPEEDUP = 2.0  # against the baseline, 2 workers
REPOSITORY = Path(__file__).resolve().parent.parent
BASELINES = REPOSITORY / ".bench-baseline"


def baseline_grader(revision: str) -> Path:
    """The `grader` command of `revision`: a worktree with its own virtualenv, made on first use."""
    folder = BASELINES / revision
    if not (folder / ".venv" / "bin" / "grader").is_file():
        BASELINES.mkdir(exist_ok=True)
        if not folder.is_dir():
            subprocess.run(["git", "-C", str(REPOSITORY), "worktree", "add", "--detach", str(folder), revision],
                           check=True, capture_output=True)
        subprocess.run(["make", "-C", str(folder), "bootstrap"], check=True)
    return folder / ".venv" / "bin" / "grader"


def timed_batch(grader: Path, folder: Path, out: Path, workers: int, cfg: Config) -> float:
    """Wall seconds of `grader batch a2_ffn FOLDER` with `workers`, which must grade every copy."""
    start = time.perf_counter()
    subprocess.run([str(grader), "batch", "a2_ffn", str(folder), "--out", str(out), "--workers", str(workers),
                    "--data-dir", str(cfg.data_root), "--device", cfg.device, "--plain", "--quiet"],
                   check=True, capture_output=True)
    seconds = time.perf_counter() - start
    graded = list(out.glob("*/report.json"))
    if len(graded) != len(list(folder.iterdir())):
        raise RuntimeError(f"{grader} graded {len(graded)} of {len(list(folder.iterdir()))} copies")
    return seconds


def run(cfg: Config) -> Result:
    assignment = load_assignment("a2_ffn")
    count = 6 if cfg.quick else 20
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp) / "submissions"
        for i in range(count):
            reference_copy(assignment, folder / f"student{i:02d}", 1)
        graders = {"this checkout": REPOSITORY / ".venv" / "bin" / "grader"}
        if cfg.baseline:
            graders[f"baseline {cfg.baseline}"] = baseline_grader(cfg.baseline)
        for name, grader in graders.items():
            for workers in (1, 2):
                wall = timed_batch(grader, folder, Path(tmp) / f"out-{len(rows)}", workers, cfg)
                rows.append({"grader": name, "workers": workers, "wall s": wall, "s per submission": wall / count})
    if cfg.baseline:
        ours, theirs = (next(r["wall s"] for r in rows if r["grader"] == g and r["workers"] == 2) for g in graders)
        speedup = theirs / ours
        rows.append({"grader": "speed-up, 2 workers", "workers": 2, "wall s": speedup, "s per submission": 0.0})
        notes.append(f"target >= {TARGET_SPEEDUP:g}x the baseline with 2 workers: "
                     f"{'met' if speedup >= TARGET_SPEEDUP else 'NOT met'} ({speedup:.2f}x)")
    else:
        notes.append("no --baseline given: this checkout only")
    return Result(NAME, [Table(f"{count} copies of the a2 reference, EPOCHS = 1 (overridden), {cfg.device}, "
                               "graded by `grader batch`", rows)], notes)
