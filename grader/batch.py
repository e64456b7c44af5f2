"""Batch grading: every submission in a folder, in parallel workers, resumable after any kill.

Each submission's reports go to `<out>/<student id>/`; report.json is written last and
atomically, so a submission counts as done exactly when a valid report.json for the same
submission hash and assignment version exists. A rerun grades only what is not done.
"""

from __future__ import annotations

import queue
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from grader.config import Assignment, DeviceKind
from grader.context import Device
from grader.errors import GraderError
from grader.intake import receive
from grader.lms import ClassFolder, Submission, read_class_folder
from grader.models import Report, SimilarityResult
from grader.pipeline import GradeOptions, grade, grader_failure, write_failed_report
from grader.reports import REPORT_JSON, read_report_json, write_atomic, write_gradebook
from grader.reports.canvas import CanvasRow, canvas_csv
from grader.sandbox import close_idle_sandboxes
from grader.similarity import run_similarity

GradeFunction = Callable[[Assignment, Path, Path, GradeOptions], Report]
SubmitFunction = Callable[[Assignment, Path, Path, GradeOptions], Future[Report]]
StatusListener = Callable[["BatchEntry", str], None]
DoneListener = Callable[["BatchEntry", Report, bool], None]  # the entry, its report, whether an earlier run made it
COLLECT_SECONDS = 0.5  # a batch waiting for its gradings wakes this often, to handle Ctrl-C and SIGTERM


@dataclass(frozen=True)
class BatchEntry:
    source: Path
    student_id: str
    student: Submission | None = None  # who handed it in, as the class folder's LMS layout says

    def out_dir(self, out: Path) -> Path:
        return out / self.student_id


@dataclass
class BatchOptions:
    workers: int = 1
    data_root: Path | None = None
    device_kind: DeviceKind = "cpu"
    gpu_count: int = 0


def discover(folder: Path, staging: Path | None = None) -> list[BatchEntry]:
    """One entry per student in `folder`, in any layout `grader.lms` reads, with unique student ids."""
    return entries_for(read_class_folder(folder), staging)


def entries_for(found: ClassFolder, staging: Path | None = None) -> list[BatchEntry]:
    """The batch entries of a class folder; a student's several files are copied together into `staging`."""
    return [BatchEntry(_source(submission, staging), submission.student_id, submission)
            for submission in found.submissions]


def _source(submission: Submission, staging: Path | None) -> Path:
    if len(submission.files) == 1:
        return submission.files[0]
    folder = (staging or Path(tempfile.mkdtemp(prefix="grader-staged-"))) / submission.student_id
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path, name in zip(submission.files, submission.original_names, strict=True):
        shutil.copyfile(path, folder / name)
    return folder


def previous_report(assignment: Assignment, entry: BatchEntry, out: Path) -> Report | None:
    """The report an earlier run wrote for this student and assignment version, if there is a readable one."""
    path = entry.out_dir(out) / REPORT_JSON
    if not path.is_file():
        return None
    try:
        report = read_report_json(path)
    except GraderError:
        return None
    return report if report.assignment_version == assignment.version else None


def submission_sha(assignment: Assignment, entry: BatchEntry) -> str:
    with tempfile.TemporaryDirectory(prefix="grader-hash-") as tmp:
        return receive(assignment, entry.source, Path(tmp) / "s", entry.student_id).info.sha256


def finished_report(assignment: Assignment, entry: BatchEntry, out: Path) -> Report | None:
    """The existing report for this exact submission and assignment version, if there is one."""
    report = previous_report(assignment, entry, out)
    return report if report is not None and report.submission.sha256 == submission_sha(assignment, entry) else None


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
    on_status: StatusListener = lambda entry, status: None,
    on_done: DoneListener = lambda entry, report, skipped: None,
    grade_one: GradeFunction = grade,
) -> list[Report]:
    """Grade every entry not already done with `grade_one` (local or in a container) in `options.workers` threads,
    each on a device slot of its own; reports in entry order."""
    slots: queue.Queue[Device] = queue.Queue()
    for device in worker_devices(options):
        slots.put(device)

    def in_a_slot(assignment: Assignment, source: Path, out_dir: Path, grade_options: GradeOptions) -> Report:
        device = slots.get()
        try:
            return grade_one(assignment, source, out_dir, replace(grade_options, device=device))
        finally:
            slots.put(device)

    pool = ThreadPoolExecutor(max_workers=options.workers)

    def submit(assignment: Assignment, source: Path, out_dir: Path, grade_options: GradeOptions) -> Future[Report]:
        return pool.submit(in_a_slot, assignment, source, out_dir, grade_options)

    try:
        reports = grade_entries(assignment, entries, out, options.data_root, submit, on_status, on_done)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        close_idle_sandboxes()
    return finish_batch(assignment, entries, out, reports)


def grade_entries(
    assignment: Assignment,
    entries: list[BatchEntry],
    out: Path,
    data_root: Path | None,
    submit_one: SubmitFunction,
    on_status: StatusListener = lambda entry, status: None,
    on_done: DoneListener = lambda entry, report, skipped: None,
) -> list[Report]:
    """Hand every entry not already done to `submit_one` (a thread pool, or Ray) and collect the reports in this
    thread as they finish, whatever their number; reports in entry order.

    A first Ctrl-C cancels what has not started, waits for the rest and writes the gradebooks of what is done."""
    gradings = _Gradings(assignment, entries, out, on_done)
    try:
        for index, entry in enumerate(entries):
            if not gradings.resumed(index):
                gradings.add(index, submit_one(assignment, entry.source, entry.out_dir(out), GradeOptions(
                    data_root=data_root, student_id=entry.student_id, reuse_sandbox=len(entries) > 1,
                    status=partial(on_status, entry))))
            gradings.collect(block=False)
        gradings.collect(block=True)
    except KeyboardInterrupt:
        # Without this line Ctrl-C looks ignored while the gradings in progress finish.
        print("grader: stopping once the submissions being graded now are done (Ctrl-C again stops them "
              f"too); {out / 'grades.csv'} will list those graded so far; rerun the same command to grade the "
              "rest.", file=sys.stderr)
        gradings.stop()
        write_gradebooks([gradings.done[index] for index in sorted(gradings.done)], entries, assignment, out)
        raise
    return [gradings.done[index] for index in range(len(entries))]


def finish_batch(assignment: Assignment, entries: list[BatchEntry], out: Path, reports: list[Report]) -> list[Report]:
    """Compare the class's code, then write the gradebooks with the similar pairs."""
    similarity = run_similarity(assignment, [entry.out_dir(out) for entry in entries], out)
    write_gradebooks(reports, entries, assignment, out, similarity)
    return reports


@dataclass
class _Gradings:
    """A batch's gradings: those resumed from an earlier run, and those submitted, collected as they finish."""

    assignment: Assignment
    entries: list[BatchEntry]
    out: Path
    on_done: DoneListener
    done: dict[int, Report] = field(default_factory=dict)
    submitted: dict[Future[Report], int] = field(default_factory=dict)
    finished: queue.SimpleQueue[Future[Report]] = field(default_factory=queue.SimpleQueue)
    outstanding: int = 0  # submitted, not yet recorded
    taken: Future[Report] | None = None  # the one being recorded now
    stopping: bool = False

    def resumed(self, index: int) -> bool:
        """Whether the entry's report from an earlier run is still its report (then it counts as done)."""
        entry = self.entries[index]
        previous = previous_report(self.assignment, entry, self.out)
        if previous is not None and previous.submission.sha256 == submission_sha(self.assignment, entry):
            self.done[index] = previous
            self.on_done(entry, previous, True)
            return True
        if previous is not None and previous.submission.sha256:  # empty: the grader failed on it last time
            print(f"grader: {entry.student_id}'s {entry.source.name} changed since its report of "
                  f"{previous.score.total:g} / {previous.score.max_total:g}; grading it again.", file=sys.stderr)
        return False

    def add(self, index: int, future: Future[Report]) -> None:
        self.submitted[future] = index
        self.outstanding += 1
        future.add_done_callback(self.finished.put)

    def collect(self, block: bool) -> None:
        """Record the gradings that have finished; with `block`, wait until every submitted one has."""
        while self.outstanding:
            try:
                self.taken = self.finished.get(block=block, timeout=COLLECT_SECONDS if block else None)
            except queue.Empty:
                if not block:
                    return
                continue
            index = self.submitted[self.taken]
            report = None if self.taken.cancelled() or index in self.done else self._report(self.taken)
            if report is not None:
                self.done[index] = report
                self.on_done(self.entries[index], report, False)
            self.taken = None
            self.outstanding -= 1

    def stop(self) -> None:
        """Cancel the gradings that have not started and wait for the others."""
        self.stopping = True
        if self.taken is not None:  # Ctrl-C came while it was being recorded: record it again
            self.finished.put(self.taken)
            self.taken = None
        for future in self.submitted:
            future.cancel()
        self.collect(block=True)

    def _report(self, future: Future[Report]) -> Report | None:
        """The grading's report; a grader bug on one submission becomes that submission's report, not a dead
        batch. A grading broken off by a stopping batch leaves no report: the rerun grades it."""
        problem = future.exception()
        if problem is None:
            return future.result()
        if self.stopping:
            return None
        if isinstance(problem, GraderError):
            raise problem
        entry = self.entries[self.submitted[future]]
        print(f"grader: internal error on {entry.student_id}: {problem!r}", file=sys.stderr)
        failure = grader_failure("".join(traceback.format_exception(problem)))
        return write_failed_report(self.assignment, entry.source, entry.student_id, failure, entry.out_dir(self.out))


def write_gradebooks(reports: list[Report], entries: list[BatchEntry], assignment: Assignment, out: Path,
                     similarity: SimilarityResult | None = None) -> None:
    """`grades.csv` and the summary with the students' names and late flags (and the similar pairs, once the batch
    is complete), and `canvas.csv` for Canvas."""
    students = {entry.student_id: entry.student for entry in entries if entry.student}
    write_gradebook(reports, assignment, out, students=students, similarity=similarity)
    rows = [canvas_row(report, students.get(report.submission.student_id)) for report in reports]
    write_atomic(out / "canvas.csv", canvas_csv(rows, assignment))


def canvas_row(report: Report, student: Submission | None) -> CanvasRow:
    """A student's Canvas line; without an LMS or roster id, the student id is taken for the SIS user id."""
    student_id, grade = report.submission.student_id, report.score.total
    if student is None:
        return CanvasRow(student=student_id, sis_user_id=student_id, grade=grade)
    fallback = "" if student.canvas_id or student.sis_login_id else student_id
    return CanvasRow(student=student.name or student_id, canvas_id=student.canvas_id,
                     sis_user_id=student.sis_user_id or fallback, sis_login_id=student.sis_login_id,
                     section=student.section, grade=grade)
