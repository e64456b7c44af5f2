"""Batch grading: every submission in a folder, in parallel workers, resumable after any kill.

Each submission's reports go to `<out>/<student id>/`; report.json is written last and
atomically, so a submission counts as done exactly when a valid report.json for the same
submission hash and assignment version exists. A rerun grades only what is not done.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader.config import Assignment
from grader.context import Device
from grader.errors import GraderError
from grader.intake import receive, student_id_for
from grader.models import Report
from grader.pipeline import GradeOptions, failed_report, grade, grader_failure
from grader.reports import read_report_json, write_all, write_gradebook
from grader.sandbox import close_idle_sandboxes
from grader.similarity import run_similarity

GradeFunction = Callable[[Assignment, Path, Path, GradeOptions], Report]


@dataclass(frozen=True)
class BatchEntry:
    source: Path
    student_id: str

    def out_dir(self, out: Path) -> Path:
        return out / self.student_id


@dataclass
class BatchOptions:
    workers: int = 1
    data_root: Path | None = None
    device_kind: str = "cpu"
    gpu_count: int = 0


def discover(folder: Path) -> list[BatchEntry]:
    """One entry per file or folder in `folder` (hidden ones skipped), with unique student ids."""
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder of submissions.")
    entries, seen = [], set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "_")):
            continue
        student_id, n = student_id_for(path), 1
        while student_id in seen:
            n += 1
            student_id = f"{student_id_for(path)}_{n}"
        seen.add(student_id)
        entries.append(BatchEntry(path, student_id))
    return entries


def finished_report(assignment: Assignment, entry: BatchEntry, out: Path) -> Report | None:
    """The existing report for this exact submission and assignment version, if there is one."""
    path = entry.out_dir(out) / "report.json"
    if not path.is_file():
        return None
    try:
        report = read_report_json(path)
    except GraderError:
        return None
    if report.assignment_version != assignment.version:
        return None
    with tempfile.TemporaryDirectory(prefix="grader-hash-") as tmp:
        sha = receive(assignment, entry.source, Path(tmp) / "s", entry.student_id).info.sha256
    return report if report.submission.sha256 == sha else None


def worker_devices(options: BatchOptions) -> list[Device]:
    """The device of each grading slot: one slot per GPU (never two submissions on one GPU, whose wall-clock
    budget they would share), else one CPU slot per worker."""
    if options.device_kind == "cuda" and options.gpu_count > 0:
        return [Device("cuda", index) for index in range(min(options.workers, options.gpu_count))]
    return [Device("cpu") for _ in range(options.workers)]


def run_batch(
    assignment: Assignment,
    entries: list[BatchEntry],
    out: Path,
    options: BatchOptions,
    on_status: Callable[[BatchEntry, str], None] = lambda entry, status: None,
    on_done: Callable[[BatchEntry, Report, bool], None] = lambda entry, report, skipped: None,
    grade_one: GradeFunction = grade,
) -> list[Report]:
    """Grade every entry not already done with `grade_one` (local or in a container); reports in entry order."""
    slots: queue.Queue[Device] = queue.Queue()
    for device in worker_devices(options):
        slots.put(device)
    stopping = threading.Event()

    def grade_entry(entry: BatchEntry) -> Report:
        existing = finished_report(assignment, entry, out)
        if existing is not None:
            on_done(entry, existing, True)
            return existing
        device = slots.get()
        try:
            report = _grade_safely(grade_one, assignment, entry, out, stopping, GradeOptions(
                data_root=options.data_root, device=device, student_id=entry.student_id,
                status=lambda status: on_status(entry, status), reuse_sandbox=len(entries) > 1))
        finally:
            slots.put(device)
        on_done(entry, report, False)
        return report

    pool = ThreadPoolExecutor(max_workers=options.workers)
    try:
        reports = list(pool.map(grade_entry, entries))
    except KeyboardInterrupt:
        # Without this line Ctrl-C looks ignored while the gradings in progress finish.
        print("grader: stopping once the submissions being graded now are done (Ctrl-C again stops them "
              "too); rerun the same command to grade the rest.", file=sys.stderr)
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        close_idle_sandboxes()
    similarity = run_similarity(assignment, [entry.out_dir(out) for entry in entries], out)
    write_gradebook(reports, assignment, out, similarity=similarity)
    return reports


def _grade_safely(grade_one: GradeFunction, assignment: Assignment, entry: BatchEntry, out: Path,
                  stopping: threading.Event, options: GradeOptions) -> Report:
    """Grade one entry; a grader bug on one submission becomes that submission's report, not a dead batch.

    A grading broken off by a stopping batch (a second Ctrl-C) leaves no report: the rerun grades it."""
    try:
        return grade_one(assignment, entry.source, entry.out_dir(out), options)
    except GraderError:
        raise
    except Exception as exc:  # noqa: BLE001 - the batch must go on
        if stopping.is_set():
            raise
        print(f"grader: internal error on {entry.student_id}: {exc!r}", file=sys.stderr)
        report = failed_report(assignment, entry.source, entry.student_id, grader_failure(traceback.format_exc()))
        write_all(report, assignment, entry.out_dir(out))
        return report
