"""The code as the grader graded it, kept in each report folder for TAs (`graded/`): what the similarity stage
compares. Students are never shown this folder; it holds only their own normalized `.py` files."""

from __future__ import annotations

import shutil
from pathlib import Path

GRADED_DIR = "graded"


def keep_graded_code(submission: Path, out_dir: Path) -> None:
    """Copy the normalized submission's `.py` files (a notebook already turned into its module) to `graded/`."""
    target = out_dir / GRADED_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in sorted(submission.rglob("*.py")):
        if path.is_file() and not path.is_symlink():
            destination = target / path.relative_to(submission)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)


def read_graded_code(report_dir: Path, required: list[str]) -> dict[str, str] | None:
    """The graded `.py` files of a report folder, required files first; None when the folder has no `graded/`."""
    folder = report_dir / GRADED_DIR
    if not folder.is_dir():
        return None
    paths = sorted((p for p in folder.rglob("*.py") if p.is_file()),
                   key=lambda p: (p.relative_to(folder).as_posix() not in required, p.relative_to(folder).as_posix()))
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8", errors="replace") for p in paths}
