"""Class folders as an LMS downloads them: who handed in what, which resubmission counts, and who was late.

- Canvas: one file per handed-in file, `<lastfirst>_[LATE_]<user id>_<file id>_<original name>`; a file handed
  in again under the same name gets `-1`, `-2`, ... before its extension.
- Gradescope: a folder `submission_<id>/` per submission and `submission_metadata.yml`, whose entries name the
  submitters (`:sid:`, `:name:`, `:email:`), `:created_at:` and, where the export has it, `:late:`.
- Moodle: a folder `<Full Name>_<participant id>_assignsubmission_file_/` per student (older versions put the
  same prefix on each file instead); `..._onlinetext_` entries hold no code.
- Plain: one submission per file or folder, the student id from its name.

Files that cannot be submissions (a `notes.txt`, the LMS's own `grades.csv`) are listed as ignored.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from grader.errors import GraderError
from grader.intake import KINDS, student_id_for

# What intake takes, and archives it refuses: those are graded too, so that the student's report says why.
SUBMISSION_SUFFIXES = (*KINDS, ".rar", ".7z", ".tar", ".tar.bz2", ".tar.xz")
GRADESCOPE_METADATA = "submission_metadata.yml"
CANVAS_NAME = re.compile(r"^(?P<name>[^_]+)_(?P<late>late_)?(?P<user>\d+)_(?P<file>\d+)_(?P<original>.+)$", re.I)
RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<suffix>\.tar\.gz|\.[^.]+)$")
MOODLE_NAME = re.compile(r"^(?P<name>.+)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.*)$")
# Parsed YAML: its values are whatever Gradescope's metadata file holds.
Metadata = dict[str, Any]


class Layout(StrEnum):
    CANVAS = "Canvas"
    GRADESCOPE = "Gradescope"
    MOODLE = "Moodle"
    PLAIN = "plain"


class Submission(BaseModel):
    """One student's submission in the download: what to grade and who handed it in."""

    student_id: str
    files: list[Path]  # one file or folder; several when a Canvas student handed in several files
    name: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    late: bool = False
    superseded: list[str] = []  # the entries of earlier submissions this one replaces

    @property
    def original_names(self) -> list[str]:
        """The names the student gave the files, without the LMS's prefix and resubmission suffix."""
        return [_original_name(path.name) for path in self.files]


class ClassFolder(BaseModel):
    """What a class folder holds: its layout, one submission per student, and the entries that are none."""

    layout: Layout
    submissions: list[Submission]
    ignored: list[str] = []


class RosterEntry(BaseModel):
    """A student as the roster names them."""

    name: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


def read_class_folder(folder: Path) -> ClassFolder:
    """The submissions in `folder`, in whichever layout it has; a GraderError if it mixes layouts."""
    if not folder.is_dir():
        raise GraderError(f"{folder} is not a folder of submissions.")
    entries = [path for path in sorted(folder.iterdir()) if not path.name.startswith((".", "_"))]
    if (folder / GRADESCOPE_METADATA).is_file():
        return _gradescope(folder, entries)
    candidates = [path for path in entries if _could_be_submission(path)]
    ignored = [path.name for path in entries if not _could_be_submission(path)]
    layouts = defaultdict(list)
    for path in candidates:
        layouts[_layout_of(path)].append(path.name)
    if len(layouts) > 1:
        kinds = "; ".join(f"{layout} ({', '.join(layouts[layout][:2])})" for layout in sorted(layouts))
        raise GraderError(f"{folder} holds submissions of more than one layout, {kinds}: keep one LMS's download "
                          "per folder.")
    layout = next(iter(layouts), Layout.PLAIN)
    reader = {Layout.CANVAS: _canvas, Layout.MOODLE: _moodle, Layout.PLAIN: _plain}[layout]
    submissions, more_ignored = reader(candidates)
    return ClassFolder(layout=layout, submissions=_unique_ids(submissions), ignored=ignored + more_ignored)


def roster_rows(path: Path) -> list[RosterEntry]:
    """A roster CSV's rows in order (Canvas's gradebook export, or columns id, name, sis_id, login, section); its
    "Points Possible" line is an empty entry."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GraderError(f"Cannot read the roster {path}: {getattr(exc, 'strerror', None) or exc}.") from None
    return [_roster_entry({(key or "").strip().lower(): (value or "").strip() for key, value in row.items()})
            for row in rows]


def read_roster(path: Path) -> dict[str, RosterEntry]:
    """A roster CSV (see `roster_rows`) by every id it gives."""
    roster: dict[str, RosterEntry] = {}
    for entry in roster_rows(path):
        for key in (entry.canvas_id, entry.sis_user_id, entry.sis_login_id):
            if key:
                roster[key] = entry
    if not roster:
        raise GraderError(f"The roster {path} names no student: it needs a column ID, SIS User ID or SIS Login ID.")
    return roster


def apply_roster(found: ClassFolder, roster: dict[str, RosterEntry]) -> tuple[ClassFolder, list[str]]:
    """The class folder with names and ids from the roster, and the student ids the roster does not know."""
    submissions, unknown = [], []
    for submission in found.submissions:
        keys = (submission.canvas_id, submission.sis_user_id, submission.student_id)
        entry = next((roster[key] for key in keys if key and key in roster), None)
        if entry is None:
            unknown.append(submission.student_id)
            submissions.append(submission)
            continue
        known = {field: value for field, value in entry.model_dump().items() if value}
        submissions.append(submission.model_copy(update=known))
    return found.model_copy(update={"submissions": submissions}), unknown


ROSTER_COLUMNS = {  # field: the column names it is read from, lower-cased
    "name": ("student", "name", "full name"),
    "canvas_id": ("id", "canvas id", "user_id"),
    "sis_user_id": ("sis user id", "sis_id", "sis_user_id", "sid", "student_id"),
    "sis_login_id": ("sis login id", "login", "email", "email address"),
    "section": ("section",),
}


def _roster_entry(row: dict[str, str]) -> RosterEntry:
    values = {field: next((row[c] for c in columns if row.get(c)), "") for field, columns in ROSTER_COLUMNS.items()}
    if values["name"].strip().lower() == "points possible":  # the second line of Canvas's export
        return RosterEntry()
    return RosterEntry(**values)


def _could_be_submission(path: Path) -> bool:
    return path.is_dir() or path.name.lower().endswith(SUBMISSION_SUFFIXES)


def _layout_of(path: Path) -> Layout:
    if MOODLE_NAME.match(path.name):
        return Layout.MOODLE
    if path.is_file() and CANVAS_NAME.match(path.name):
        return Layout.CANVAS
    return Layout.PLAIN


def _original_name(name: str) -> str:
    """A Canvas or Moodle file's own name: without the LMS's prefix and a resubmission's `-N`."""
    if match := MOODLE_NAME.match(name):
        name = match["file"] or name
    elif match := CANVAS_NAME.match(name):
        name = match["original"]
    if match := RESUBMISSION.match(name):
        return match["stem"] + match["suffix"]
    return name


def _resubmission(name: str) -> int:
    match = RESUBMISSION.match(_fields(CANVAS_NAME, name)["original"])
    return int(match["n"]) if match else 0


def _fields(pattern: re.Pattern[str], name: str) -> re.Match[str]:
    """The fields of a name that `pattern` matched when the folder's layout was detected."""
    match = pattern.match(name)
    if match is None:
        raise GraderError(f"{name} is not named the way its LMS names files.")
    return match


def _plain(paths: list[Path]) -> tuple[list[Submission], list[str]]:
    return [Submission(student_id=student_id_for(path), files=[path]) for path in paths], []


def _canvas(paths: list[Path]) -> tuple[list[Submission], list[str]]:
    """One submission per Canvas user: the newest upload of each file name (by resubmission number, then file id)."""
    by_user: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        by_user[_fields(CANVAS_NAME, path.name)["user"]].append(path)
    submissions = []
    for user, files in by_user.items():
        newest = sorted(files, key=lambda p: (_resubmission(p.name), int(_fields(CANVAS_NAME, p.name)["file"])))
        kept = {_original_name(path.name): path for path in newest}  # the newest of each name wins
        first = _fields(CANVAS_NAME, kept[next(iter(kept))].name)
        submissions.append(Submission(
            student_id=user, canvas_id=user, name=first["name"], files=sorted(kept.values()),
            late=any(_fields(CANVAS_NAME, p.name)["late"] for p in kept.values()),
            superseded=sorted(p.name for p in files if p not in kept.values())))
    return submissions, []


def _moodle(paths: list[Path]) -> tuple[list[Submission], list[str]]:
    """One submission per Moodle participant: the file submission's folder, or its prefixed files."""
    by_participant: dict[str, list[Path]] = defaultdict(list)
    names, ignored = {}, []
    for path in paths:
        match = _fields(MOODLE_NAME, path.name)
        if match["plugin"] != "file":
            ignored.append(path.name)
            continue
        by_participant[match["participant"]].append(path)
        names[match["participant"]] = match["name"]
    return [Submission(student_id=participant, name=names[participant], files=files)
            for participant, files in by_participant.items()], ignored


def _gradescope(folder: Path, entries: list[Path]) -> ClassFolder:
    """One submission per submitter: the newest `submission_<id>/` that names them in the metadata."""
    metadata = _gradescope_metadata(folder / GRADESCOPE_METADATA)
    newest: dict[str, tuple[Path, Metadata]] = {}
    superseded: dict[str, list[str]] = defaultdict(list)
    ignored = [p.name for p in entries if p.name != GRADESCOPE_METADATA and p.name not in metadata]
    for key, meta in sorted(metadata.items(), key=_created):
        if not (folder / key).is_dir():
            continue
        student_id = _submitter_id(meta, key)
        if student_id in newest:
            superseded[student_id].append(newest[student_id][0].name)
        newest[student_id] = (folder / key, meta)
    submissions = []
    for student_id, (path, meta) in newest.items():
        student = _plain_keys((meta.get("submitters") or [{}])[0])
        submissions.append(Submission(
            student_id=student_id_for(Path(student_id)), files=[path], name=str(student.get("name") or ""),
            sis_user_id=str(student.get("sid") or ""), late=bool(meta.get("late")),
            superseded=sorted(superseded[student_id])))
    return ClassFolder(layout=Layout.GRADESCOPE, submissions=submissions, ignored=ignored)


def _created(item: tuple[str, Metadata]) -> tuple[float, str]:
    """When a Gradescope submission was made (YAML reads `:created_at:` as a datetime), then its key."""
    created = item[1].get("created_at")
    return (created.timestamp() if isinstance(created, datetime) else 0.0), item[0]


def _submitter_id(meta: Metadata, key: str) -> str:
    """The first submitter's student id (`:sid:`), else their email, else the submission's key."""
    student = _plain_keys((meta.get("submitters") or [{}])[0])
    return str(student.get("sid") or student.get("email") or key)


def _gradescope_metadata(path: Path) -> dict[str, Metadata]:
    """`submission_metadata.yml` with Ruby's symbol keys (`:sid:`) made plain (`sid`)."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise GraderError(f"Cannot read Gradescope's {path}: {exc.__class__.__name__}.") from None
    if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
        raise GraderError(f"{path} is not Gradescope's metadata: it should map each submission_<id> to its details.")
    return {str(key): _plain_keys(value) for key, value in loaded.items()}


def _plain_keys(mapping: dict[object, Any]) -> Metadata:
    return {str(key).lstrip(":"): value for key, value in mapping.items()}


def _unique_ids(submissions: list[Submission]) -> list[Submission]:
    """The submissions with distinct ids, a clash getting `_2`, `_3`, ... in folder order."""
    seen: set[str] = set()
    unique = []
    for submission in sorted(submissions, key=lambda s: s.files[0].name):
        student_id, n = submission.student_id, 1
        while student_id in seen:
            n += 1
            student_id = f"{submission.student_id}_{n}"
        seen.add(student_id)
        unique.append(submission.model_copy(update={"student_id": student_id}))
    return unique
