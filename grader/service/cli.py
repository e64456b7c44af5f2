"""`grader course init`, `grader roster import|reissue`, `grader extension(s)` and `grader serve`: set a course up,
run its service, and give students their own deadlines."""

from __future__ import annotations

import getpass
import ipaddress
import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from grader import data as grading_data
from grader.config import load_assignment
from grader.course import COURSE_FILE, course_template, load_course
from grader.embedded_ray import confine_embedded_ray
from grader.errors import GraderError
from grader.reports.files import write_atomic
from grader.service.settings import ServiceSettings

if TYPE_CHECKING:  # the database and web modules load only for the commands that use them
    from grader.service.people import NewToken

course_app = typer.Typer(help="The course the service runs (course.toml).", no_args_is_help=True)
roster_app = typer.Typer(help="Students and TAs, and their login tokens.", no_args_is_help=True)
db_app = typer.Typer(help="The service's database.", no_args_is_help=True)
console = Console()

CourseDir = Annotated[Path, typer.Option("--course-dir", envvar="GRADER_COURSE_DIR",
                                         help="The course folder: course.toml, the database, uploads and reports.")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database", envvar="GRADER_DATABASE_URL",
    help="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db (default: SQLite in the course folder).")]


class DeviceKind(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@course_app.command("init")
def course_init(
    course_dir: CourseDir = Path("."),
    name: Annotated[str, typer.Option(help="The course's name, shown on every page.")] = "Deep learning",
    timezone: Annotated[str, typer.Option(help="IANA time zone of the due dates.")] = "UTC",
    force: Annotated[bool, typer.Option(help="Overwrite an existing course.toml.")] = False,
) -> None:
    """Write a course.toml offering every assignment, due a week apart; edit it before serving."""
    path = course_dir / COURSE_FILE
    if path.exists() and not force:
        raise GraderError(f"{path} exists already; edit it, or pass --force to start over.")
    course_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(path, course_template(name, datetime.now(UTC), timezone))
    load_course(course_dir)  # what was written must load
    where = "" if course_dir == Path(".") else f" --course-dir {course_dir}"
    console.print(f"Wrote {path}; edit the dates and rules, then `grader roster import roster.csv{where}`.",
                  highlight=False)


def _settings(course_dir: Path, database: str | None, **extra: object) -> ServiceSettings:
    return ServiceSettings.model_validate({"course_dir": course_dir.resolve(), "database_url": database, **extra})


def _write_tokens(course_dir: Path, tokens: list[NewToken], out: Path | None, kind: str) -> Path:
    """The tokens CSV (`tokens-<kind>-<time>.csv` unless `out` is given), readable by its owner only."""
    from grader.service.people import tokens_csv

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out or course_dir / f"tokens-{kind}-{stamp}.csv"
    write_atomic(path, tokens_csv(tokens))
    os.chmod(path, 0o600)
    return path


def _show_tokens(tokens: list[NewToken]) -> None:
    """One line per person, never wrapped, so that a token can be copied whole."""
    for new in tokens:
        console.print(f"{new.person.login}  {new.person.name}  <{new.person.email}>  {new.token}", soft_wrap=True,
                      highlight=False, markup=False)


@roster_app.command("import")
def roster_import(
    roster: Annotated[Path, typer.Argument(help="CSV with the columns student_id, name, email, or Canvas's "
                                                 "gradebook export (SIS User ID is the id).")],
    course_dir: CourseDir = Path("."),
    database: DatabaseUrl = None,
    ta: Annotated[bool, typer.Option("--ta", help="The people in this roster are TAs.")] = False,
    tokens_out: Annotated[Path | None, typer.Option(help="Where to write the new tokens (CSV for mailing).")] = None,
) -> None:
    """Add the people of a roster, each with a login token; tokens are shown once and stored only hashed."""
    from grader.service.db import open_database
    from grader.service.people import import_roster, read_roster
    from grader.service.tables import Role

    read = read_roster(roster)
    if read.skipped:
        console.print(f"Skipped {len(read.skipped)} row(s) without an SIS User ID (such as Canvas's test student): "
                      f"{'; '.join(read.skipped)}.", soft_wrap=True, highlight=False, markup=False)
    role = Role.TA if ta else Role.STUDENT
    sessions = open_database(_settings(course_dir, database).database)
    with sessions() as db:
        done = import_roster(db, read.entries, role)
    for change in done.changes:
        console.print(f"Updated {change}", soft_wrap=True, highlight=False, markup=False)
    if done.unchanged:
        console.print(f"Already on the roster, tokens unchanged: {', '.join(done.unchanged)}.", highlight=False)
    tokens = done.tokens
    if not tokens:
        console.print("Nobody new on this roster.")
        return
    _show_tokens(tokens)
    path = _write_tokens(course_dir, tokens, tokens_out, role.value)
    people = "TA(s)" if role is Role.TA else "student(s)"
    console.print(f"Added {len(tokens)} {people}; their tokens are in {path} (only here and now: "
                  "the service keeps only hashes).")


@roster_app.command("reissue")
def roster_reissue(
    login: Annotated[str, typer.Argument(metavar="STUDENT_ID", help="The id of the student or TA.")],
    course_dir: CourseDir = Path("."),
    database: DatabaseUrl = None,
    tokens_out: Annotated[Path | None, typer.Option(help="Where to write the new token (CSV for mailing).")] = None,
) -> None:
    """Give someone a new token (the old one, and every session it opened, stops working)."""
    from grader.service.db import open_database
    from grader.service.people import reissue_token

    sessions = open_database(_settings(course_dir, database).database)
    with sessions() as db:
        new = reissue_token(db, login)
    _show_tokens([new])
    path = _write_tokens(course_dir, [new], tokens_out, f"reissued-{login}")
    console.print(f"The new token is also in {path} (only here and now: the service keeps only its hash).",
                  soft_wrap=True, highlight=False)


def extension(
    login: Annotated[str, typer.Argument(metavar="STUDENT", help="The student's id.")],
    assignment_id: Annotated[str, typer.Argument(metavar="ASSIGNMENT", help="The assignment's id, e.g. a1_dataset.")],
    due: Annotated[str | None, typer.Option(
        help="The student's due date, e.g. 2026-12-24T23:59 (in the course's time zone unless an offset is given).")]
    = None,
    hard_deadline: Annotated[str | None, typer.Option(
        help="When their uploads close (default: the course's gap between due date and hard deadline).")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the student's extension instead.")] = False,
    course_dir: CourseDir = Path("."),
    database: DatabaseUrl = None,
) -> None:
    """Give one student their own deadlines for one assignment (replacing an earlier extension), or revoke it."""
    from grader.service.db import open_database
    from grader.service.extensions import grant, parse_moment
    from grader.service.extensions import revoke as revoke_extension

    course = load_course(course_dir)
    by = f"{getpass.getuser()} (command line)"
    with open_database(_settings(course_dir, database).database)() as db:
        if revoke:
            revoked = revoke_extension(db, login, assignment_id, by)
            console.print(f"Revoked {login}'s extension of {assignment_id}." if revoked
                          else f"{login} has no extension of {assignment_id}.", highlight=False)
            return
        if due is None:
            raise GraderError("Give the student's new due date with --due (or pass --revoke).")
        hard = parse_moment(hard_deadline, course) if hard_deadline else None
        granted = grant(db, course, login, assignment_id, parse_moment(due, course), hard, reason, by)
    console.print(f"{login} is now due {course.show_time(granted.due)} for {assignment_id}; grades follow at once "
                  "(restart not needed).", highlight=False)


def extensions(
    assignment_id: Annotated[str | None, typer.Option("--assignment", help="Only this assignment's.")] = None,
    course_dir: CourseDir = Path("."),
    database: DatabaseUrl = None,
) -> None:
    """List every extension, revoked ones too, with who granted or revoked it and when."""
    from grader.service.db import open_database
    from grader.service.extensions import list_extensions

    course = load_course(course_dir)
    with open_database(_settings(course_dir, database).database)() as db:
        views = list_extensions(db, course, assignment_id)
    if not views:
        console.print("No extensions.")
        return
    for view in views:  # one unwrapped line each, for grep
        revoked = f"; revoked by {view.revoked_by} {course.show_time(view.revoked_at)}" if view.revoked_at else ""
        console.print(f"{view.login} {view.assignment_id}: due {course.show_time(view.due)}, uploads close "
                      f"{course.show_time(view.hard_deadline)}; granted by {view.granted_by} "
                      f"{course.show_time(view.granted_at)}{revoked}; reason: {view.reason or '-'}",
                      soft_wrap=True, highlight=False, markup=False)


@db_app.command("upgrade")
def db_upgrade(course_dir: CourseDir = Path("."), database: DatabaseUrl = None) -> None:
    """Migrate the database to this grader's schema (before `roster import`, and after installing a new grader)."""
    from grader.service.db import make_engine, migrate, schema_revision

    engine = make_engine(_settings(course_dir, database).database)
    migrate(engine)
    console.print(f"The database {engine.url.render_as_string()} is at schema {schema_revision(engine)[0]}.",
                  highlight=False)
    engine.dispose()


def serve(
    course_dir: CourseDir = Path("."),
    database: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Address to listen on; keep 127.0.0.1 behind a reverse proxy.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    cluster: Annotated[str, typer.Option(
        help="Where grading runs: local (Ray in this process), auto, HOST:PORT or ray://HOST:PORT of a Ray cluster, "
             "or none to queue uploads without grading them.")] = "local",
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="CIFAR-10 root for grading (default: $GRADER_DATA_DIR or the cache).")] = None,
    device: Annotated[DeviceKind, typer.Option(help="What the workers train on; auto: CUDA when a node has a GPU.")]
    = DeviceKind.auto,
    https: Annotated[bool, typer.Option(help="Served behind an HTTPS reverse proxy: session cookies are Secure.")]
    = False,
) -> None:
    """Run the course's submission service: student and TA pages, the API under /api/, and grading."""
    import uvicorn

    confine_embedded_ray(cluster)
    from grader.service.app import create_app  # imports Ray (through the dispatcher)

    grading = cluster != "none"
    settings = _settings(course_dir, database, cluster=cluster if grading else None, device_kind=device.value,
                         data_root=_data_root(course_dir, data_dir) if grading else None, https=https)
    app = create_app(settings)
    if not _loopback(host) and not https:
        console.print(f"[yellow]warning:[/] listening on {host} without --https; put the service behind an HTTPS "
                      "reverse proxy (see docs/operators/https.md) so tokens and cookies are never sent in clear text.")
    uvicorn.run(app, host=host, port=port, proxy_headers=True, log_level="info")


def _data_root(course_dir: Path, flag: Path | None) -> Path | None:
    """The CIFAR-10 root when an offered assignment trains or reads images, else None."""
    offered = [load_assignment(a.id) for a in load_course(course_dir).assignments]
    if any(a.training is not None or a.checks_read_data for a in offered):
        return grading_data.resolve_data_root(flag)
    return None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
