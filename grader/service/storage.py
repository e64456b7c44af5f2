"""Uploaded files on disk, addressed by their sha256: `uploads/<sha[:2]>/<sha>/<stored name>`.

A name from an upload never becomes a path: only its kind (suffix) is kept, from a fixed list, and the stored
name is `submission<suffix>`, or the assignment's required file for a `.py` (so intake needs no renaming note).
A file is written to a temp file, fsynced, renamed into place and its folders fsynced before anyone is told.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from grader.intake import KINDS_SENTENCE, file_kind
from grader.reports.templating import points

PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600  # the course folder's data is the service user's alone
STORED_STEM = "submission"
CHUNK_BYTES = 2**20
MAGIC = {".zip": (b"PK\x03\x04", b"PK\x05\x06"), ".tar.gz": (b"\x1f\x8b",)}


class UploadRefused(Exception):
    """An upload the service does not accept; the message is the sentence the student reads."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class StoredUpload:
    sha256: str
    suffix: str
    size: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def too_large(max_bytes: int) -> str:
    """The refusal of an upload over the course's limit, with the number the upload form shows."""
    return f"The upload is larger than the course's limit of {points(max_bytes / 2**20)} MB."


def upload_suffix(filename: str) -> str:
    """The stored suffix for an upload's name, or UploadRefused naming the kinds accepted."""
    found = file_kind(filename)
    if found is None or len(filename) == len(found[0]):
        raise UploadRefused(f"Upload {KINDS_SENTENCE}.", 415)
    return found[1]


def read_chunks(file: BinaryIO) -> Iterator[bytes]:
    """An open file's bytes, a chunk at a time."""
    while chunk := file.read(CHUNK_BYTES):
        yield chunk


def stored_name(suffix: str, required_file: str) -> str:
    """The name an upload is stored (and graded) under: the required file for a lone .py, a notebook named after
    it (the report then says "Graded ffn.ipynb as ffn.py"), else submission.*."""
    stem, _, extension = required_file.rpartition(".")
    if extension == "py" and suffix in (".py", ".ipynb"):
        return f"{stem}{suffix}"
    return f"{STORED_STEM}{suffix}"


def upload_path(uploads_dir: Path, sha256: str, name: str) -> Path:
    return uploads_dir / sha256[:2] / sha256 / name


def report_dir(reports_dir: Path, grading_id: int) -> Path:
    """The report folder of one grading (a regrade is another grading, with its own folder)."""
    return reports_dir / str(grading_id)


def store(chunks: Iterable[bytes], uploads_dir: Path, suffix: str, name: str, max_bytes: int) -> StoredUpload:
    """Write the chunks durably as `name` under their sha256; more than `max_bytes` is refused before it is all
    read."""
    staging = uploads_dir / "staging"
    staging.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=staging)
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadRefused(too_large(max_bytes), 413)
                digest.update(chunk)
                file.write(chunk)
            file.flush()
            os.fsync(file.fileno())
        if size == 0:
            raise UploadRefused("The uploaded file is empty.")
        path = upload_path(uploads_dir, digest.hexdigest(), name)
        for folder in (path.parent.parent, path.parent):
            folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, path)
        for folder in (path.parent, path.parent.parent, uploads_dir):  # the new entries of each level
            _fsync_dir(folder)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return StoredUpload(digest.hexdigest(), suffix, size, path)


def make_private(root: Path) -> None:
    """Make a folder and everything in it the service user's alone (folders 0700, files 0600)."""
    if not root.exists():
        return
    root.chmod(PRIVATE_DIR)
    for folder, folders, files in os.walk(root):
        for name in folders:
            os.chmod(os.path.join(folder, name), PRIVATE_DIR)
        for name in files:
            os.chmod(os.path.join(folder, name), PRIVATE_FILE)


def clear_staging(uploads_dir: Path) -> None:
    """Remove partial uploads a killed service left behind (none of them was ever acknowledged)."""
    for partial in (uploads_dir / "staging").glob("*"):
        partial.unlink(missing_ok=True)


def check_format(stored: StoredUpload) -> None:
    """Refuse a file that is plainly not what its name says; intake looks closer when it is graded."""
    with stored.path.open("rb") as file:
        head = file.read(4)
    if stored.suffix in MAGIC and not head.startswith(MAGIC[stored.suffix]):
        raise UploadRefused(f"The file is not a {stored.suffix} archive; make it again and upload that.")
    if stored.suffix == ".ipynb" and not _is_notebook(stored.path):
        raise UploadRefused("The file is not a Jupyter notebook (it is not notebook JSON).")
    if stored.suffix == ".py" and b"\0" in stored.path.read_bytes():
        raise UploadRefused("The file is not Python source (it contains binary data).")


def _is_notebook(path: Path) -> bool:
    try:
        content = json.loads(path.read_bytes())
    except (ValueError, RecursionError):  # any parse failure: bad UTF-8, bad JSON, nesting deeper than Python's stack
        return False
    return isinstance(content, dict) and isinstance(content.get("cells"), list)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
