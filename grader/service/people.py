"""The people of a course: importing a roster with one login token each, reissuing a token, pseudonyms.

A roster is a CSV file with a header row naming the columns `student_id`, `name` and `email`, or Canvas's gradebook
export (`Student`, `ID`, `SIS User ID`, `SIS Login ID`, `Section`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.errors import GraderError
from grader.lms import RosterEntry as CanvasEntry
from grader.lms import roster_rows
from grader.service.auth import end_sessions, issue_token
from grader.service.tables import Person, Role

ROSTER_COLUMNS = ("student_id", "name", "email")
CANVAS_ID_COLUMN = "sis user id"  # a header with it (and no student_id) is Canvas's gradebook export
LOGIN = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,63}")  # not "." or "..", which a URL path resolves
# A pseudonym as stored: words of letters, digits and _ . - one space apart, 3 to PSEUDONYM_MAX characters.
PSEUDONYM = re.compile(r"[A-Za-z0-9_.-]{3,}|[A-Za-z0-9_.-]+(?: [A-Za-z0-9_.-]+)+")
PSEUDONYM_MAX = 40


class PseudonymTaken(ValueError):
    """Another person has chosen this pseudonym."""


@dataclass(frozen=True)
class RosterEntry:
    login: str
    name: str
    email: str


@dataclass(frozen=True)
class NewToken:
    """A token to hand to its owner; it is shown this once, the database keeps only its hash."""

    person: RosterEntry
    token: str


@dataclass(frozen=True)
class RosterFile:
    """A roster's people, and the rows it left out: those of a Canvas export without an SIS User ID (such as
    Canvas's test student), as "line N (name)"."""

    entries: list[RosterEntry]
    skipped: list[str]


def read_roster(path: Path) -> RosterFile:
    """The roster's rows, checked: the header, a usable and unique id on every row. Canvas's gradebook export is
    read too (grader.lms): the SIS User ID is the student id, the SIS Login ID the email column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise GraderError(f"Cannot read the roster {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise GraderError(f"The roster {path} is not UTF-8 text; save it as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    if CANVAS_ID_COLUMN in header and "student_id" not in header:
        return _canvas_roster(path)
    missing = [column for column in ROSTER_COLUMNS if column not in (reader.fieldnames or [])]
    if missing:
        raise GraderError(f"The roster {path} has no {', '.join(missing)} column; its header must name "
                          f"{', '.join(ROSTER_COLUMNS)} (or it is Canvas's gradebook export, with an SIS User ID "
                          "column).")
    rows = [(line, row["student_id"] or "", row["name"] or "", row["email"] or "")
            for line, row in enumerate(reader, start=2)]
    return RosterFile(_checked(path, rows), [])


def _canvas_roster(path: Path) -> RosterFile:
    """Canvas's gradebook export as a roster; its "Points Possible" line is not a person."""
    rows, skipped = [], []
    for line, entry in enumerate(roster_rows(path), start=2):
        if entry == CanvasEntry():
            continue
        if not entry.sis_user_id:
            skipped.append(f"line {line} ({entry.name or entry.canvas_id})")
            continue
        rows.append((line, entry.sis_user_id, entry.name, entry.sis_login_id))
    return RosterFile(_checked(path, rows), skipped)


def _checked(path: Path, rows: list[tuple[int, str, str, str]]) -> list[RosterEntry]:
    """Roster entries from (line, student id, name, email) rows: every id usable and unique."""
    entries, seen = [], set()
    for line, raw_login, name, email in rows:
        login = raw_login.strip()
        if not LOGIN.fullmatch(login):
            raise GraderError(f"The roster {path}, line {line}: the student_id {login!r} is empty or has characters "
                              "other than letters, digits and _ . @ -.")
        if login in seen:
            raise GraderError(f"The roster {path}, line {line}: the student_id {login} appears twice.")
        seen.add(login)
        entries.append(RosterEntry(login, name.strip() or login, email.strip()))
    return entries


@dataclass(frozen=True)
class RosterImport:
    """What an import did: new people's tokens, the known people it left as they were, and each change it made to
    a known person's name or email (one sentence each)."""

    tokens: list[NewToken]
    unchanged: list[str]
    changes: list[str]


def import_roster(db: Session, entries: list[RosterEntry], role: Role) -> RosterImport:
    """Add everyone not yet known with a new token, and update the name and email of those known."""
    known = {p.login: p for p in db.scalars(select(Person).where(Person.login.in_([e.login for e in entries])))}
    tokens, unchanged, changes = [], [], []
    for entry in entries:
        person = known.get(entry.login)
        if person is None:
            issued = issue_token()
            db.add(Person(login=entry.login, name=entry.name, email=entry.email, role=role,
                          token_id=issued.token_id, token_hash=issued.token_hash))
            tokens.append(NewToken(entry, issued.token))
            continue
        changed = _update(person, entry)
        changes.extend(changed)
        if not changed:
            unchanged.append(entry.login)
    db.commit()
    return RosterImport(tokens, sorted(unchanged), changes)


def _update(person: Person, entry: RosterEntry) -> list[str]:
    """Bring a known person's name and email up to the roster's; one sentence per change."""
    changes = []
    for field in ("name", "email"):
        old, new = getattr(person, field), getattr(entry, field)
        if old != new:
            setattr(person, field, new)
            changes.append(f"{person.login}: {field} {old!r} is now {new!r}.")
    return changes


def reissue_token(db: Session, login: str) -> NewToken:
    """A new token for someone who lost theirs; the old one and its sessions stop working."""
    person = db.scalar(select(Person).where(Person.login == login))
    if person is None:
        raise GraderError(f"Nobody with the id {login!r} is on the roster.")
    issued = issue_token()
    person.token_id, person.token_hash = issued.token_id, issued.token_hash
    end_sessions(db, person.id)
    db.commit()
    return NewToken(RosterEntry(person.login, person.name, person.email), issued.token)


def tokens_csv(tokens: list[NewToken]) -> str:
    """The new tokens as CSV for a mail merge: student_id, name, email, token."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*ROSTER_COLUMNS, "token"])
    for new in tokens:
        writer.writerow([new.person.login, new.person.name, new.person.email, new.token])
    return buffer.getvalue()


def change_pseudonym(db: Session, person: Person, pseudonym: str) -> None:
    """Set (or, when empty, clear) a person's leaderboard pseudonym, spaces tidied; ValueError says why one is
    refused (PseudonymTaken when someone else has it)."""
    pseudonym = " ".join(pseudonym.split())
    if pseudonym and not (PSEUDONYM.fullmatch(pseudonym) and len(pseudonym) <= PSEUDONYM_MAX):
        raise ValueError(f"A pseudonym has 3 to {PSEUDONYM_MAX} letters, digits, spaces, dots, dashes or "
                         "underscores.")
    taken = PseudonymTaken(f"The pseudonym {pseudonym} is taken (in some mix of capitals); choose another.")
    if pseudonym and db.scalar(select(Person.id).where(func.lower(Person.pseudonym) == pseudonym.lower(),
                                                       Person.id != person.id)):
        raise taken
    person.pseudonym = pseudonym or None
    try:
        db.commit()
    except IntegrityError:  # taken between the check and the commit
        db.rollback()
        raise taken from None
