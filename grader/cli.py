"""The `grader` command line (typer), with rich tables and progress."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, TypedDict

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader import __version__
from grader import data as grading_data
from grader.batch import (
    BatchEntry,
    BatchOptions,
    DoneListener,
    GradeFunction,
    StatusListener,
    entries_for,
    finish_batch,
    grade_entries,
    run_batch,
)
from grader.config import Assignment, DeviceKind, assignment_ids, load_assignment
from grader.context import Device, gpu_count, load_grading_data, sandbox_config
from grader.embedded_ray import confine_embedded_ray
from grader.errors import GraderError
from grader.intake import student_id_for
from grader.lms import ClassFolder, apply_roster, read_class_folder, read_roster
from grader.models import SIMILARITY_DIR, Report, SimilarityResult
from grader.paths import COURSE_ROOT_ENV, examples_dir, require_course_root
from grader.pipeline import GradeOptions, grade
from grader.reports.files import REPORT_JSON
from grader.reports.gradescope import write_gradescope_results
from grader.sandbox import prestart_sandbox
from grader.service import cli as service_cli
from grader.tasks import TASK_TYPES

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(help="Autograder for PyTorch course assignments.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, context_settings=HELP)
data_app = typer.Typer(help="The image data the grader trains and scores on.", no_args_is_help=True,
                       context_settings=HELP)
app.add_typer(data_app, name="data")
app.add_typer(service_cli.course_app, name="course")
app.add_typer(service_cli.roster_app, name="roster")
app.add_typer(service_cli.db_app, name="db")
app.command("serve")(service_cli.serve)
app.command("extension")(service_cli.extension)
app.command("extensions")(service_cli.extensions)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


class DeviceChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Runner(StrEnum):
    local = "local"
    docker = "docker"


DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Image-folder root (default: $GRADER_DATA_DIR or "
                                                                "cache).")]
DeviceOpt = Annotated[DeviceChoice, typer.Option(help="Where to train: auto uses CUDA when available.")]
RunnerOpt = Annotated[Runner, typer.Option(help="local: sandboxed child processes; docker: one container each.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")]
Plain = Annotated[bool, typer.Option(help="Plain lines: one per submission instead of a live table, no boxes.")]
Out = Annotated[Path | None, typer.Option("--out", help="Folder for the reports (default: reports/ASSIGNMENT).")]
BatchRun = Callable[[StatusListener, DoneListener], list[Report]]  # a batch, given whom to tell what happens
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", metavar="local|auto|ray://HOST:PORT|HOST:PORT",
    help="Grade on Ray: local (embedded, this machine), auto (the cluster `ray start` or $RAY_ADDRESS names), "
         "or a cluster's address.")]


def main() -> None:
    """Entry point: every GraderError becomes one sentence on stderr and exit status 2."""
    try:
        app()
    except GraderError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise SystemExit(2) from None


def _show_version(value: bool) -> None:
    if value:
        console.print(f"grader {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                          help="Print the grader's version and exit.")] = False,
    course_root: Annotated[Path | None, typer.Option(
        "--course-root", envvar=COURSE_ROOT_ENV, show_envvar=True,
        help="The course root: the folder with assignments/, solutions/ and tests/ (default: the current folder "
             "when it has assignments/, else the checkout the grader is installed editable from).")] = None,
) -> None:
    """Autograder for PyTorch course assignments."""
    if course_root is not None:  # through the environment, so every process the grader starts sees the same root
        os.environ[COURSE_ROOT_ENV] = str(require_course_root(course_root))


@app.command("list")
def list_assignments() -> None:
    """List the assignments and what they are worth."""
    table = Table("id", "title", "version", "points", "training budget (cpu/cuda s)")
    for assignment_id in assignment_ids():
        try:
            a = load_assignment(assignment_id)
        except GraderError as exc:  # one broken config must not hide the others
            table.add_row(assignment_id, f"[red]{escape(str(exc))}[/]", "-", "-", "-")
            continue
        budget = "/".join(f"{v:g}" for v in a.training.budget_seconds.values()) if a.training else "-"
        table.add_row(a.id, a.title, a.version, f"{a.total_points:g}", budget)
    console.print(table)


@app.command("grade")
def grade_one(
    assignment_id: Annotated[str, typer.Argument(metavar="ASSIGNMENT")],
    submission: Annotated[Path, typer.Argument(help="A folder, .zip, .tar.gz, .py or .ipynb.")],
    out: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the reports (default: reports/ASSIGNMENT/STUDENT).")] = None,
    student_id: Annotated[str | None, typer.Option("--id", help="Student id (default: from the file name).")] = None,
    data_dir: DataDir = None,
    device: DeviceOpt = DeviceChoice.auto,
    runner: RunnerOpt = Runner.local,
    quiet: Quiet = False,
    plain: Plain = False,
    leaderboard: Annotated[bool, typer.Option(help="Add Gradescope leaderboard entries to results.json.")] = False,
    wait_for_delivery: Annotated[float | None, typer.Option(
        hidden=True, help="In a docker runner's container: warm up, then grade what arrives in SUBMISSION (its inbox) "
                          "within this many seconds.")] = None,
) -> None:
    """Grade one submission and write its reports."""
    assignment = load_assignment(assignment_id)
    if not submission.exists():
        raise GraderError(f"The submission {submission} does not exist.")
    out = out or Path("reports") / assignment.id / (student_id or student_id_for(submission))
    _ensure_writable(out)
    options = BatchOptions(workers=1, data_root=_data_root(assignment, data_dir), **_device_options(device))
    status = (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/]", highlight=False))
    device_of = Device(options.device_kind, 0 if options.gpu_count else None)
    if wait_for_delivery is not None:
        submission, student_id = _delivered(assignment, submission, options.data_root, device_of, wait_for_delivery)
    report = _grade_function(runner)(assignment, submission, out, GradeOptions(
        data_root=options.data_root, device=device_of, student_id=student_id,
        status=status))
    if leaderboard:
        write_gradescope_results(report, out, leaderboard=True)
    _print_score(report, plain)
    console.print(f"Reports written to {out}", highlight=False)


@app.command("batch")
def grade_batch(
    assignment_id: Annotated[str, typer.Argument(metavar="ASSIGNMENT")],
    folder: Annotated[Path, typer.Argument(
        help="A class folder: one submission per file or subfolder, or a Canvas, Gradescope or Moodle download.")],
    out: Out = None,
    workers: Annotated[int, typer.Option(min=1, help="Submissions graded at once (with --cluster, Ray decides).")] = 1,
    data_dir: DataDir = None,
    device: DeviceOpt = DeviceChoice.auto,
    runner: RunnerOpt = Runner.local,
    quiet: Quiet = False,
    plain: Plain = False,
    cluster: ClusterOpt = None,
    roster: Annotated[Path | None, typer.Option(
        help="A roster CSV (Canvas's gradebook export, or columns id, name, sis_id, login, section) that names "
             "the students and their SIS ids.")] = None,
) -> None:
    """Grade every submission in FOLDER; rerunning resumes where a killed run stopped."""
    assignment = load_assignment(assignment_id)
    out = out or Path("reports") / assignment.id
    _ensure_writable(out)
    entries = entries_for(_class_folder(folder, roster), out / ".staged")
    data_root = _data_root(assignment, data_dir)
    with _sigterm_as_ctrl_c():
        if cluster is None:
            options = BatchOptions(workers=workers, data_root=data_root, **_device_options(device))
            reports = _run_batch_with_display(assignment, len(entries), partial(
                run_batch, assignment, entries, out, options, grade_one=_grade_function(runner)), quiet, plain)
        else:
            reports = _grade_on_cluster(cluster, assignment, entries, out, data_root, device, runner, quiet, plain)
    console.print(_summary_table(assignment, reports))
    console.print(f"Reports in {out}; gradebook {out / 'grades.csv'}; for Canvas {out / 'canvas.csv'}; "
                  f"summary {out / 'summary.html'}", highlight=False)


@app.command("similarity")
def similarity(
    assignment_id: Annotated[str, typer.Argument(metavar="ASSIGNMENT")],
    reports_dir: Annotated[Path, typer.Argument(metavar="REPORTS_DIR", help="A `grader batch` out folder.")],
    archive: Annotated[list[Path] | None, typer.Option(
        "--archive", help="A folder of an earlier term's submissions to compare the class with (repeatable).")] = None,
) -> None:
    """Compare the class's graded code; list similar pairs in the summary with side-by-side views (TAs only)."""
    from grader.reports import read_report_json, write_gradebook
    from grader.similarity import run_similarity

    assignment = load_assignment(assignment_id)
    folders = sorted(path.parent for path in reports_dir.glob(f"*/{REPORT_JSON}"))
    if not folders:
        raise GraderError(f"No report.json in the subfolders of {reports_dir}; give the --out folder of grader batch.")
    reports = [read_report_json(folder / REPORT_JSON) for folder in folders]
    other = sorted({r.assignment_id for r in reports} - {assignment.id})
    if other:
        raise GraderError(f"{reports_dir} holds reports of {', '.join(other)}, not only of {assignment.id}.")
    _ensure_writable(reports_dir)
    result = run_similarity(assignment, folders, reports_dir, archive or [])
    write_gradebook(reports, assignment, reports_dir, folders, similarity=result)
    console.print(_similarity_table(result))
    console.print(f"Side-by-side views in {reports_dir / SIMILARITY_DIR}; listed in {reports_dir / 'summary.html'}")


@app.command("check-solutions")
def check_solutions(
    assignments: Annotated[list[str] | None, typer.Argument(
        metavar="[ASSIGNMENT]...", help="The assignments to check (default: every one).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("reports/check-solutions"),
    data_dir: DataDir = None,
    device: DeviceOpt = DeviceChoice.auto,
    runner: RunnerOpt = Runner.local,
    quiet: Quiet = False,
    plain: Plain = False,
) -> None:
    """Grade the reference solutions (must be 100%) and stubs (must be 0) of the named assignments, or of every one."""
    failed = []
    for assignment in [load_assignment(assignment_id) for assignment_id in assignments or assignment_ids()]:
        data_root = _data_root(assignment, data_dir)
        for kind, folder, expected in (("solution", assignment.solution_dir, assignment.total_points),
                                       ("stub", assignment.folder, 0.0)):
            if not quiet:
                console.print(f"[bold]{assignment.id}[/] {kind} ...", highlight=False)
            options = GradeOptions(data_root=data_root, student_id=kind, **_single_device(device))
            report = _grade_function(runner)(assignment, folder, out / assignment.id / kind, options)
            if not quiet:
                _print_score(report, plain)
            if report.score.total != expected:
                failed.append(f"{assignment.id} {kind}: {report.score.total:g} instead of {expected:g}"
                              + (_unchecked_groups(assignment, report) if kind == "solution" else ""))
    if failed:
        raise GraderError("Not every reference earns full marks and every stub zero: " + "; ".join(failed) + ".")
    console.print("[green]Every reference solution earns full marks and every stub earns none.[/]")


def _unchecked_groups(assignment: Assignment, report: Report) -> str:
    """Why a reference may miss points the instructor did not mean it to: check groups no hidden check counts for."""
    empty = [group.name for group in assignment.checks if not any(r.group == group.name for r in report.checks)]
    if not empty:
        return ""
    return (f" (no hidden check counts towards the group {', '.join(map(repr, empty))} of its assignment.toml: "
            "each check's @pytest.mark.group must name one of its [[checks]] groups)")


@app.command("report")
def rerender(
    report_json: Annotated[Path, typer.Argument(help="A report.json, its folder, or a batch folder of them.")],
) -> None:
    """Re-render the Markdown, HTML and Gradescope files from report.json files."""
    from grader.reports import read_report_json, write_all, write_gradebook
    from grader.similarity import load_result

    if (report_json / REPORT_JSON).is_file():  # one student's report folder
        report_json = report_json / REPORT_JSON
    paths = [report_json] if report_json.is_file() else sorted(report_json.glob(f"*/{REPORT_JSON}"))
    if not paths:
        raise GraderError(f"No report.json at {report_json}, nor in its subfolders.")
    reports = [read_report_json(path) for path in paths]
    for path, report in zip(paths, reports, strict=True):
        write_all(report, load_assignment(report.assignment_id), path.parent)
    if report_json.is_dir():
        write_gradebook(reports, load_assignment(reports[0].assignment_id), report_json,
                        similarity=load_result(report_json))
    console.print(f"Re-rendered {len(reports)} report(s).")


@app.command("examples")
def grade_examples(
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path("reports/examples"),
    workers: Annotated[int, typer.Option(min=1)] = 2,
    data_dir: DataDir = None,
    device: DeviceOpt = DeviceChoice.auto,
    runner: RunnerOpt = Runner.local,
    quiet: Quiet = False,
    plain: Plain = False,
) -> None:
    """Batch-grade the bundled example submissions of every assignment."""
    for assignment_id in assignment_ids():
        grade_batch(assignment_id, examples_dir() / assignment_id, out / assignment_id, workers, data_dir, device,
                    runner, quiet, plain, None, None)


@app.command("stubs")
def stubs(check: Annotated[bool, typer.Option(help="Only check; fail if a stub is out of date.")] = False) -> None:
    """Regenerate the student stubs from the reference solutions (otter solution markers); a solution notebook's
    stub is its notebook handout."""
    from grader.authoring import write_notebook_handout  # otter is slow to import; only this command needs it
    from grader.stubs import solution_notebook, stale_stubs

    stale = stale_stubs(write=not check)
    course = [load_assignment(assignment_id) for assignment_id in assignment_ids()]
    handouts = [write_notebook_handout(assignment, check) for assignment in course if solution_notebook(assignment)]
    stale += [path for path, was_stale in handouts if was_stale]
    if check and stale:
        raise GraderError(f"Stubs out of date: {', '.join(map(str, stale))}; run `grader stubs`.")
    console.print(f"{'Rewrote' if stale and not check else 'Up to date:'} {len(stale) if stale else 'all'} stub(s).")


@app.command("new")
def new(
    assignment_id: Annotated[str, typer.Argument(metavar="ID", help="The new assignment's id and folder name.")],
    task: Annotated[str, typer.Option(help="The task whose template to write: classification or "
                                           "reconstruction.")] = "classification",
    module: Annotated[str | None, typer.Option(help="The module students hand in (default: the id after its "
                                                    "first underscore).")] = None,
    title: Annotated[str | None, typer.Option(help="The assignment's title (default: the id).")] = None,
    notebook: Annotated[bool, typer.Option("--notebook", help="Write the reference as a solution notebook, and "
                                                             "the stub as its notebook handout.")] = False,
) -> None:
    """Write a new assignment's skeleton into the course root: config, solution, stub, handout and checks."""
    from grader.authoring import new_assignment  # otter is slow to import; only authoring needs it

    written = new_assignment(assignment_id, task, module, title, notebook)
    console.print(f"Wrote {len(written)} files of {assignment_id}; `grader check-solutions {assignment_id}` "
                  "grades its reference and stub.", highlight=False)


@app.command("handout")
def handout(
    assignments: Annotated[list[str], typer.Argument(metavar="ASSIGNMENT...", help="The assignments.")],
    check: Annotated[bool, typer.Option(help="Only check; fail if a notebook handout is out of date.")] = False,
) -> None:
    """Write each assignment's notebook handout, <module>.ipynb, from its solution with the solutions removed."""
    from grader.authoring import write_notebook_handout  # otter is slow to import; only authoring needs it

    results = [write_notebook_handout(load_assignment(i), check) for i in assignments]
    stale = [str(path) for path, was_stale in results if was_stale]
    if check and stale:
        raise GraderError(f"Notebook handouts out of date: {', '.join(stale)}; run `grader handout`.")
    written = f"Wrote {len(stale)}" if stale and not check else f"Up to date: {len(results)}"
    console.print(f"{written} notebook handout(s).", highlight=False)


@data_app.command("prepare")
def data_prepare(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where to write (default: the cache).")] = None,
) -> None:
    """Download CIFAR-10 through torchvision into the canonical PNG layout, and decode each assignment's images."""
    root = grading_data.prepare(data_dir or grading_data.default_data_root())
    _print_data(root, _declaring_data([]))
    console.print(f"Data ready at {root}")


@data_app.command("info")
def data_info(
    assignment_ids_: Annotated[list[str] | None, typer.Argument(
        metavar="[ASSIGNMENT]...", help="Assignments whose [data] to show (default: all that declare one).")] = None,
    data_dir: DataDir = None,
) -> None:
    """Where the data is, and per assignment the images its [data] names, their fingerprints (as the reports record
    them) and the normalization the grader applies."""
    root = grading_data.resolve_data_root(data_dir)
    _print_data(root, _declaring_data(assignment_ids_ or []))
    console.print(f"root {root}; tensor cache {grading_data.cache_dir() / 'tensors'}")


def _declaring_data(ids: list[str]) -> list[Assignment]:
    """The assignments `ids` names, or all that declare [data]."""
    return [load_assignment(i) for i in ids] if ids else \
        [a for a in map(load_assignment, assignment_ids()) if a.data is not None]


def _print_data(root: Path, assignments: list[Assignment]) -> None:
    for assignment in assignments:
        if assignment.data is None:
            raise GraderError(f"{assignment.id} declares no [data] in its assignment.toml.")
        data = load_grading_data(root, assignment.data)
        console.print(f"{assignment.id}: {assignment.data.dataset}, {len(assignment.data.classes)} classes "
                      f"({', '.join(assignment.data.classes)})")
        for split, tensors in ((assignment.data.train_split, data.train), (assignment.data.test_split, data.test)):
            console.print(f"  {split}: {len(tensors.labels)} images, fingerprint {tensors.fingerprint}")
        console.print(f"  normalization: mean {[round(m, 4) for m in data.mean]}, "
                      f"std {[round(s, 4) for s in data.std]}")


def _data_root(assignment: Assignment, flag: Path | None) -> Path | None:
    """The data root when the assignment needs data (training or data-reading checks), else None."""
    if assignment.training is None and not assignment.checks_read_data:
        return None
    return grading_data.resolve_data_root(flag)


class DeviceOptions(TypedDict):
    """The device fields of BatchOptions."""

    device_kind: DeviceKind
    gpu_count: int


def _device_options(choice: DeviceChoice) -> DeviceOptions:
    count = 0 if choice is DeviceChoice.cpu else gpu_count()
    if choice is DeviceChoice.cuda and count == 0:
        raise GraderError("--device cuda was given, but no CUDA GPU is visible to the grader.")
    return {"device_kind": "cuda" if count else "cpu", "gpu_count": count}


class SingleDevice(TypedDict):
    """The device field of GradeOptions."""

    device: Device


def _single_device(choice: DeviceChoice) -> SingleDevice:
    options = _device_options(choice)
    return {"device": Device("cuda", 0) if options["gpu_count"] else Device("cpu")}


def _ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".grader-write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise GraderError(f"Cannot write reports to {out}: {exc.strerror or exc}.") from None


def _class_folder(folder: Path, roster: Path | None) -> ClassFolder:
    """The class folder's submissions, with what a TA should know about it said once on stderr."""
    found = read_class_folder(folder)
    if roster is not None:
        found, unknown = apply_roster(found, read_roster(roster))
        if unknown:
            _say(f"Not on the roster {roster} (graded under their download ids): {', '.join(unknown)}.")
    if found.layout != "plain":
        _say(f"{folder} is a {found.layout} download: {len(found.submissions)} student(s).")
    if found.ignored:
        _say(f"Ignored, as not submissions: {', '.join(found.ignored)}.")
    for submission in found.submissions:
        if submission.superseded:
            kept = ", ".join(path.name for path in submission.files)
            _say(f"{submission.student_id}: graded the latest, {kept}; superseded {', '.join(submission.superseded)}.")
    late = [submission.student_id for submission in found.submissions if submission.late]
    if late:
        _say(f"Marked late by {found.layout}: {', '.join(late)} (the late column of grades.csv).")
    return found


def _say(sentence: str) -> None:
    errors.print(escape(sentence), highlight=False)


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a scheduler or `kill`) stops a batch as a first Ctrl-C does: in-progress gradings finish, the
    gradebook lists what is done, a rerun resumes; the exit status is 130."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_score(report: Report, plain: bool) -> None:
    if not plain:
        console.print(_score_table(report))
        return
    console.print(f"{report.submission.student_id}: {_points(report)}", highlight=False)
    for item in report.score.items:
        console.print(f"  {item.title}: {item.points:g} / {item.max_points:g}: {item.reason}", highlight=False)


def _points(report: Report) -> str:
    return f"{report.score.total:g} / {report.score.max_total:g}"


def _score_table(report: Report) -> Table:
    table = Table(title=f"{report.submission.student_id}: {_points(report)}", title_justify="left")
    table.add_column("part")
    table.add_column("points", justify="right")
    table.add_column("reason", overflow="fold")
    for item in report.score.items:
        table.add_row(item.title, f"{item.points:g} / {item.max_points:g}", item.reason)
    return table


def _summary_table(assignment: Assignment, reports: list[Report]) -> Table:
    table = Table(title=f"{assignment.id}: {len(reports)} submission(s)", title_justify="left")
    metric = TASK_TYPES[assignment.metric.task].metric if assignment.metric else "metric"
    for column in ("student", "score", metric, "first failure or lost points"):
        table.add_column(column, justify="right" if column in ("score", metric) else "left", overflow="fold")
    for report in reports:
        value = f"{report.metrics.value:.4f}" if report.metrics else "-"
        flag = " (flagged)" if report.flagged_for_review else ""
        lost = (f"{item.title}: {item.points:g} / {item.max_points:g}" for item in report.score.items
                if item.points < item.max_points)
        failure = report.failures[0].message if report.failures else next(lost, "")
        table.add_row(report.submission.student_id, _points(report), value + flag, failure)
    return table


def _similarity_table(result: SimilarityResult) -> Table:
    table = Table(title=f"{len(result.pairs)} similar pair(s) among {result.submissions} submission(s)"
                        + (f" and {result.archived} archived" if result.archived else ""), title_justify="left")
    for column in ("first", "second", "first's code in second", "second's code in first", "same normalized code"):
        table.add_column(column, justify="right" if "code in" in column else "left")
    for pair in result.pairs:
        table.add_row(pair.first, pair.second, f"{pair.first_share:.0%}", f"{pair.second_share:.0%}",
                      "yes" if pair.duplicate else "")
    return table


def _delivered(assignment: Assignment, inbox: Path, data_root: Path | None, device: Device,
               seconds: float) -> tuple[Path, str]:
    """Start the warm sandbox, then wait for the docker runner to deliver the submission: its path and student."""
    from grader.docker_runner import wait_for_delivery

    prestart_sandbox(sandbox_config(assignment, data_root, device))
    delivery = wait_for_delivery(inbox, seconds)
    return inbox / delivery.source, delivery.student_id


def _grade_function(runner: Runner) -> GradeFunction:
    if runner is Runner.docker:
        from grader.docker_runner import grade_in_container

        return grade_in_container
    return grade


def _grade_on_cluster(cluster: str, assignment: Assignment, entries: list[BatchEntry], out: Path,
                      data_root: Path | None, device: DeviceChoice, runner: Runner, quiet: bool,
                      plain: bool) -> list[Report]:
    """The batch on Ray: every submission handed to the cluster at once, Ray deciding where and when."""
    if runner is Runner.docker:
        raise GraderError("--cluster grades with the local runner on every node (a node may itself run in the "
                          "grader image); drop --runner docker.")
    confine_embedded_ray(cluster)
    from grader.cluster import Dispatcher  # imports Ray, which reads what confine_embedded_ray set

    with Dispatcher(cluster, data_root, device.value) as dispatcher:
        reports = _run_batch_with_display(assignment, len(entries), partial(
            grade_entries, assignment, entries, out, data_root, dispatcher.submit_grading), quiet, plain)
    return finish_batch(assignment, entries, out, reports)


def _run_batch_with_display(assignment: Assignment, count: int, run: BatchRun, quiet: bool,
                            plain: bool) -> list[Report]:
    """`run` (a batch given its status and done listeners) with a live table, a line per submission, or quiet."""
    live_view = not quiet and not plain and console.is_terminal
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
    task = progress.add_task(f"grading {assignment.id}", total=count)
    statuses: dict[str, str] = {}
    lock = threading.Lock()

    def on_status(entry: BatchEntry, status: str) -> None:
        with lock:
            statuses[entry.student_id] = status

    def on_done(entry: BatchEntry, report: Report, skipped: bool) -> None:
        with lock:
            statuses[entry.student_id] = ("already graded: " if skipped else "") + _points(report)
            progress.advance(task)
        if not live_view and not quiet:
            note = " (already graded)" if skipped else ""
            console.print(f"{entry.student_id}: {_points(report)}{note}", highlight=False)

    def view() -> Group:
        table = Table("student", "status")
        for column in table.columns:
            column.overflow = "fold"
        with lock:
            for student, status in statuses.items():
                table.add_row(student, status)
        return Group(table, progress)

    if not live_view:
        return run(on_status, on_done)
    with Live(get_renderable=view, console=console, refresh_per_second=4):
        return run(on_status, on_done)
