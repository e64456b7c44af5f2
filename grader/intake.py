"""Intake: turn whatever a student handed in into a folder holding the assignment's files.

Accepts a folder, a `.zip`, a `.tar.gz`, a single `.py` or a notebook. Archives are read member
by member with caps on count and size, so nothing escapes the destination and no bomb expands.
A notebook, or a .py exported from one, becomes the required module through `grader.notebook`.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import shutil
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from grader import notebook
from grader.config import Assignment
from grader.models import Failure, FailureKind, SubmissionInfo
from grader.notebook import NotebookError, NotebookModule

# What zipfile and tarfile raise mid-read for a broken, encrypted or oddly compressed archive.
UNREADABLE = (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
              NotImplementedError)
IGNORED_NAMES = {"conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini", "__MACOSX", ".DS_Store",
                 "__pycache__"}
CACHE_NAMES = ("__pycache__", ".pyc")  # Python's own caches: dropped without a note, they are not the student's work
CODING_LINE = re.compile(r"^[ \t\f]*#.*?coding[:=]", re.MULTILINE)
# The files a submission may be besides a folder: each suffix (lower case) and the kind it is read as.
KINDS = {".tar.gz": ".tar.gz", ".tgz": ".tar.gz", ".zip": ".zip", ".ipynb": ".ipynb", ".py": ".py"}
KINDS_SENTENCE = "a .py file, a Jupyter notebook (.ipynb), or a folder as .zip or .tar.gz"


class IntakeError(Exception):
    """A submission that cannot be taken in; the message is the student-readable sentence."""

    def __init__(self, message: str, kind: FailureKind = FailureKind.INTAKE) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class Intake:
    """The normalized submission: its folder and what intake recorded about it."""

    folder: Path
    info: SubmissionInfo
    failure: Failure | None = None
    notebook: NotebookModule | None = None  # set when the module was made from a notebook or its export


def file_kind(name: str) -> tuple[str, str] | None:
    """The suffix a file name ends with and the kind it is read as (.py, .ipynb, .zip, .tar.gz), or None."""
    lowered = name.lower()
    return next(((given, kind) for given, kind in KINDS.items() if lowered.endswith(given)), None)


def student_id_for(source: Path) -> str:
    """The student id a file or folder name implies: its name without archive suffixes."""
    name = source.name
    if found := file_kind(name):
        name = name[: -len(found[0])]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._") or "submission"


def receive(assignment: Assignment, source: Path, dest: Path, student_id: str | None = None) -> Intake:
    """Normalize `source` into `dest`; a bad submission gives an Intake with a failure, never an exception."""
    student_id = student_id or student_id_for(source)
    notes: list[str] = []
    failure = module = None
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    try:
        _unpack(assignment, source, dest, notes)
        originals = _place_required_files(assignment, dest, notes)
        _ensure_utf8(assignment, dest, notes)
        module = _notebook_module(assignment, dest, originals, notes)
        notes += [f"Used {original} as {required}." for required, original in originals.items()
                  if original != required and not (module and module.module_file == required)]
    except IntakeError as exc:
        failure = Failure(stage="intake", kind=exc.kind, message=str(exc))
    info = SubmissionInfo(
        student_id=student_id,
        source=source.name,
        sha256=submission_hash(dest),
        files=sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()),
        notes=notes,
    )
    return Intake(folder=dest, info=info, failure=failure, notebook=module)


def submission_hash(folder: Path) -> str:
    """sha256 over the normalized files' relative names and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _unpack(assignment: Assignment, source: Path, dest: Path, notes: list[str]) -> None:
    if not source.exists():
        raise IntakeError(f"The submission {source.name} does not exist.")
    caps = _Caps(assignment)
    kind = None if source.is_dir() else (file_kind(source.name) or ("", ""))[1]
    if kind is None:
        members = _folder_members(source)
    elif kind == ".zip":
        members = _zip_members(source, caps)
    elif kind == ".tar.gz":
        members = _tar_members(source, caps)
    elif kind == ".py":
        _write(dest / source.name, source.read_bytes(), caps)
        return
    elif kind == ".ipynb":
        if source.stat().st_size > caps.max_total:
            raise IntakeError(f"The submission is larger than {caps.max_total_mb:g} MB in total.")
        try:  # the outputs (plots, printed tables) can be megabytes; grading needs the code only
            _write(dest / source.name, notebook.without_outputs(source), caps)
        except NotebookError as exc:
            raise IntakeError(str(exc)) from None
        return
    else:
        raise IntakeError(f"{source.name} cannot be graded: hand in {KINDS_SENTENCE} (or the folder itself).")
    try:
        for relative, data in members:
            _take_member(dest, relative, data, caps, notes)
    except UNREADABLE as exc:
        raise IntakeError(f"{source.name} is damaged, encrypted or compressed in an unsupported way, "
                          f"and cannot be unpacked ({exc.__class__.__name__}).") from None
    if caps.files == 0:
        raise IntakeError(f"{source.name} contains no files.")
    _hoist_single_folder(dest, notes)


def _take_member(dest: Path, relative: PurePosixPath, data: bytes, caps: _Caps, notes: list[str]) -> None:
    """Write one member under `dest`, unless it is configuration or hidden; bad names are IntakeErrors."""
    shown = str(relative).encode("utf-8", "backslashreplace").decode()
    if shown != str(relative):
        raise IntakeError(f"The file name {shown} is not valid UTF-8; rename it.")
    if relative.name.endswith(CACHE_NAMES) or "__pycache__" in relative.parts:
        return
    if any(part in IGNORED_NAMES or part.startswith(".") for part in relative.parts):
        notes.append(f"Ignored {relative} (configuration and hidden files are not used in grading).")
        return
    try:
        _write(dest / relative, data, caps)
    except OSError as exc:  # a name too long, or a file where the archive also has a folder of that name
        raise IntakeError(f"The entry {shown} cannot be written: {exc.strerror or exc}.") from None


def _hoist_single_folder(dest: Path, notes: list[str]) -> None:
    """An archive or folder whose files all sit one folder down is taken from that folder."""
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        name = entries[0].name
        inner = entries[0].rename(dest / ".hoisting")  # it may hold an entry of its own name (hw/hw/...)
        for child in inner.iterdir():
            shutil.move(child, dest / child.name)
        inner.rmdir()
        notes.append(f"Took the files from the folder {name}/ inside the submission.")


class _Caps:
    """Counts files and bytes as they are written and stops at the assignment's limits."""

    def __init__(self, assignment: Assignment) -> None:
        self.max_files = assignment.submission.max_files
        self.max_total_mb, self.max_file_mb = assignment.submission.max_total_mb, assignment.submission.max_file_mb
        self.max_total = int(self.max_total_mb * 2**20)
        self.max_file = int(self.max_file_mb * 2**20)
        self.files = self.total = 0

    def admit(self, name: str, size: int) -> None:
        self.files += 1
        self.total += size
        if self.files > self.max_files:
            raise IntakeError(f"The submission has more than {self.max_files} files.")
        if size > self.max_file:
            raise self.too_large(name)
        if self.total > self.max_total:
            raise IntakeError(f"The submission is larger than {self.max_total_mb:g} MB in total.")

    def too_large(self, name: str) -> IntakeError:
        return IntakeError(f"{name} is larger than {self.max_file_mb:g} MB.")


def _write(path: Path, data: bytes, caps: _Caps) -> None:
    caps.admit(path.name, len(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _safe_relative(name: str) -> PurePosixPath:
    """A member name as a relative path that stays inside the destination, or an IntakeError."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name) or ".." in path.parts:
        raise IntakeError(f"The archive entry {name!r} points outside the submission folder.")
    return PurePosixPath(*[part for part in path.parts if part not in ("", ".")])


def _folder_members(folder: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    for path in sorted(folder.rglob("*")):
        relative = PurePosixPath(path.relative_to(folder).as_posix())
        if path.is_symlink():
            raise IntakeError(f"{relative} is a symbolic link; submit plain files only.")
        if path.is_file():
            yield relative, path.read_bytes()


def _zip_members(source: Path, caps: _Caps) -> Iterator[tuple[PurePosixPath, bytes]]:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise IntakeError(f"{source.name} is not a readable zip archive.") from None
    with archive:
        for member in archive.infolist():
            if (member.external_attr >> 16) & 0o170000 == 0o120000:
                raise IntakeError(f"The archive entry {member.filename!r} is a symbolic link; submit plain files.")
            relative = _safe_relative(member.filename)
            if member.is_dir() or not relative.parts:
                continue
            yield relative, _read_capped(archive.open(member), relative, caps)


def _tar_members(source: Path, caps: _Caps) -> Iterator[tuple[PurePosixPath, bytes]]:
    try:
        archive = tarfile.open(source, "r:gz")  # noqa: SIM115 - closed by the `with` below
    except (tarfile.TarError, OSError):
        raise IntakeError(f"{source.name} is not a readable .tar.gz archive.") from None
    with archive:
        for member in archive:
            relative = _safe_relative(member.name)
            if member.isdir() or not relative.parts:
                continue
            if not member.isfile() or (stream := archive.extractfile(member)) is None:
                raise IntakeError(f"The archive entry {member.name!r} is a link or device; submit plain files.")
            yield relative, _read_capped(stream, relative, caps)


def _read_capped(stream: IO[bytes], relative: PurePosixPath, caps: _Caps) -> bytes:
    """Read at most the per-file cap, so a member that lies about its size cannot expand without bound."""
    with stream:
        data = stream.read(caps.max_file + 1)
    if len(data) > caps.max_file:
        raise caps.too_large(relative.name)
    return data


def _place_required_files(assignment: Assignment, dest: Path, notes: list[str]) -> dict[str, str]:
    """Find each required file, also one folder down or under another name when unambiguous.

    Returns the name the student gave each required file; a notebook standing in for the required .py
    stays where it is, for `_notebook_module` to convert.
    """
    originals, missing = {}, []
    for required in assignment.submission.files:
        if (dest / required).is_file():
            work = _notebook_beside_stub(assignment, dest, required)
            originals[required] = work.relative_to(dest).as_posix() if work else required
            if work:
                notes.append(f"Graded {originals[required]}, not {required} beside it: that is the handout's "
                             "stub, unchanged.")
            continue
        candidates = sorted(dest.rglob(required)) or _lone_source_file(assignment, dest)
        if len(candidates) != 1:
            missing.append(required)
            continue
        originals[required] = candidates[0].relative_to(dest).as_posix()
        if candidates[0].suffix != ".ipynb":
            shutil.move(candidates[0], dest / required)
    if missing:
        raise IntakeError(f"The submission is missing {', '.join(missing)}{_found_instead(dest)}.",
                          FailureKind.MISSING_FILE)
    return originals


def _notebook_beside_stub(assignment: Assignment, dest: Path, required: str) -> Path | None:
    """The one notebook handed in with the module's stub left as the handout gave it (a student who works in the
    notebook handout and hands in the whole folder): the notebook is their work, the stub is not."""
    stub = assignment.folder / required
    if required != f"{assignment.submission.module}.py" or not stub.is_file():
        return None
    notebooks = sorted(dest.rglob("*.ipynb"))
    unchanged = (dest / required).read_bytes() == stub.read_bytes()
    return notebooks[0] if unchanged and len(notebooks) == 1 else None


def _lone_source_file(assignment: Assignment, dest: Path) -> list[Path]:
    """The only .py or .ipynb file of a one-file assignment, whatever it is called."""
    sources = _source_files(dest)
    return sources if len(assignment.submission.files) == 1 and len(sources) == 1 else []


def _source_files(dest: Path) -> list[Path]:
    return sorted(p for p in dest.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file())


def _found_instead(dest: Path) -> str:
    """What a student who misnamed the required file may have meant: the .py and .ipynb files handed in."""
    found = [p.relative_to(dest).as_posix() for p in _source_files(dest)]
    return f" (it has {', '.join(found)}: rename the one to grade)" if 1 < len(found) <= 5 else ""


def _notebook_module(assignment: Assignment, dest: Path, originals: dict[str, str],
                     notes: list[str]) -> NotebookModule | None:
    """Turn a notebook, or a .py exported from one, into the assignment's module; None for a plain module."""
    module_file = f"{assignment.submission.module}.py"
    original = originals.get(module_file)
    if original is None:
        return None
    required = assignment.submission.api.keys()
    module: NotebookModule | None
    try:
        if original.endswith(".ipynb"):
            module = notebook.from_notebook_file(dest / original, module_file, required)
            (dest / original).unlink()
        else:
            text = (dest / module_file).read_text(encoding="utf-8")
            module = notebook.from_exported_text(text, PurePosixPath(original).name, module_file, required)
    except UnicodeDecodeError:  # a module that declares a legacy encoding: a plain module, imported as it is
        return None
    except NotebookError as exc:
        raise IntakeError(str(exc)) from None
    if module is not None:
        (dest / module_file).write_text(module.text, encoding="utf-8")
        notes.append(module.note())
    return module


def _ensure_utf8(assignment: Assignment, dest: Path, notes: list[str]) -> None:
    """Re-encode a required file saved in a legacy encoding, as a student would expect it to work."""
    for required in assignment.submission.files:
        path = dest / required
        if not path.is_file():  # a notebook standing in for it; nbformat reads its encoding
            continue
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", errors="replace")
            if CODING_LINE.search("\n".join(text.splitlines()[:2])):
                continue
            path.write_text(text, encoding="utf-8")
            notes.append(f"{required} was not UTF-8; it was read as Windows-1252 and converted.")
