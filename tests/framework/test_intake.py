"""Intake: every accepted submission shape, and every hostile or broken one failing with one sentence."""

from __future__ import annotations

import io
import json
import stat
import struct
import tarfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.authoring import notebook_of_module
from grader.config import Assignment, load_assignment
from grader.intake import Intake, receive, student_id_for
from grader.models import FailureKind

FFN = "def build_model():\n    return None\n"


@pytest.fixture(scope="module")
def ffn() -> Assignment:
    return load_assignment("a2_ffn")


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def make_folder(path: Path, members: dict[str, bytes]) -> Path:
    for name, data in members.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


def take(assignment: Assignment, source: Path, tmp_path: Path) -> Intake:
    """`receive` into a fresh folder; it must never raise, whatever the submission."""
    return receive(assignment, source, tmp_path / "dest")


def assert_failed(intake: Intake, kind: FailureKind, *fragments: str) -> None:
    assert intake.failure is not None, intake.info
    assert intake.failure.kind == kind
    assert "\n" not in intake.failure.message and intake.failure.message.endswith(".")
    for fragment in fragments:
        assert fragment in intake.failure.message


def assert_nothing_outside(tmp_path: Path, *expected: str) -> None:
    """Nothing but the listed entries (sources and the destination) appeared next to the destination."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["dest", *expected])
    assert not (tmp_path.parent / "evil.py").exists() and not Path("/abs.py").exists()


@pytest.mark.parametrize("shape", ["folder", "zip", "tar.gz"])
def test_archives_and_folders_give_the_required_file(ffn: Assignment, tmp_path: Path, shape: str) -> None:
    members = {"ffn.py": FFN.encode(), "helpers/util.py": b"X = 1\n"}
    source = {"folder": lambda: make_folder(tmp_path / "ada", members),
              "zip": lambda: make_zip(tmp_path / "ada.zip", members),
              "tar.gz": lambda: make_tar(tmp_path / "ada.tar.gz", members)}[shape]()
    intake = take(ffn, source, tmp_path)
    assert intake.failure is None
    assert intake.info.files == ["ffn.py", "helpers/util.py"]
    assert (intake.folder / "ffn.py").read_text() == FFN
    assert intake.info.student_id == "ada" and intake.info.notes == []


def test_single_python_file_is_renamed_with_a_note(ffn: Assignment, tmp_path: Path) -> None:
    source = tmp_path / "my_network.py"
    source.write_text(FFN)
    intake = take(ffn, source, tmp_path)
    assert intake.failure is None and intake.info.files == ["ffn.py"]
    assert (intake.folder / "ffn.py").read_text() == FFN
    assert any("my_network.py" in note and "ffn.py" in note for note in intake.info.notes)


def test_files_one_folder_down_are_hoisted(ffn: Assignment, tmp_path: Path) -> None:
    source = make_zip(tmp_path / "ada.zip", {"hw2/ffn.py": FFN.encode(), "hw2/README.md": b"hi\n"})
    intake = take(ffn, source, tmp_path)
    assert intake.failure is None and intake.info.files == ["README.md", "ffn.py"]
    assert any("hw2/" in note for note in intake.info.notes)


@pytest.mark.parametrize("name", ["../evil.py", "/abs.py", "a/../../evil.py"])
def test_zip_slip_is_refused(ffn: Assignment, tmp_path: Path, name: str) -> None:
    source = make_zip(tmp_path / "ada.zip", {"ffn.py": FFN.encode(), name: b"import os\n"})
    intake = take(ffn, source, tmp_path)
    assert_failed(intake, FailureKind.INTAKE, repr(name), "outside")
    assert_nothing_outside(tmp_path, "ada.zip")


def test_tar_slip_is_refused(ffn: Assignment, tmp_path: Path) -> None:
    source = make_tar(tmp_path / "ada.tar.gz", {"ffn.py": FFN.encode(), "../evil.py": b"import os\n"})
    intake = take(ffn, source, tmp_path)
    assert_failed(intake, FailureKind.INTAKE, "'../evil.py'", "outside")
    assert_nothing_outside(tmp_path, "ada.tar.gz")


def test_zip_symlink_member_is_refused(ffn: Assignment, tmp_path: Path) -> None:
    source = tmp_path / "ada.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("ffn.py", FFN)
        link = zipfile.ZipInfo("data.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    intake = take(ffn, source, tmp_path)
    assert_failed(intake, FailureKind.INTAKE, "'data.py'", "symbolic link")
    assert not (intake.folder / "data.py").exists()
    assert_nothing_outside(tmp_path, "ada.zip")


def test_tar_symlink_member_is_refused(ffn: Assignment, tmp_path: Path) -> None:
    source = tmp_path / "ada.tar.gz"
    with tarfile.open(source, "w:gz") as archive:
        archive.addfile(tarfile.TarInfo("ffn.py"), io.BytesIO(b""))
        link = tarfile.TarInfo("data.py")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    intake = take(ffn, source, tmp_path)
    assert_failed(intake, FailureKind.INTAKE, "'data.py'", "link")
    assert not (intake.folder / "data.py").is_symlink()
    assert_nothing_outside(tmp_path, "ada.tar.gz")


def test_symlink_in_a_folder_is_refused(ffn: Assignment, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ada", {"ffn.py": FFN.encode()})
    (folder / "secrets.py").symlink_to("/etc/passwd")
    assert_failed(take(ffn, folder, tmp_path), FailureKind.INTAKE, "secrets.py", "symbolic link")


@pytest.mark.parametrize("megabytes", [50, 80])
def test_zip_bomb_stops_at_the_assignment_limit(ffn: Assignment, tmp_path: Path, megabytes: int) -> None:
    source = tmp_path / "ada.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("ffn.py", "w") as member:
        for _ in range(megabytes):
            member.write(bytes(2**20))
    assert source.stat().st_size < 2**20
    started = time.monotonic()
    intake = take(ffn, source, tmp_path)
    assert time.monotonic() - started < 5
    limit = ffn.submission.max_file_mb
    assert_failed(intake, FailureKind.INTAKE, f"larger than {limit:g} MB")
    assert all(p.stat().st_size <= limit * 2**20 for p in intake.folder.rglob("*") if p.is_file())


def test_too_many_files(ffn: Assignment, tmp_path: Path) -> None:
    count = ffn.submission.max_files + 1
    members = {"ffn.py": FFN.encode()} | {f"extra_{i}.txt": b"x" for i in range(count)}
    intake = take(ffn, make_zip(tmp_path / "ada.zip", members), tmp_path)
    assert_failed(intake, FailureKind.INTAKE, f"more than {ffn.submission.max_files} files")


def test_empty_zip(ffn: Assignment, tmp_path: Path) -> None:
    assert_failed(take(ffn, make_zip(tmp_path / "ada.zip", {}), tmp_path), FailureKind.INTAKE, "no files")


@pytest.mark.parametrize(("name", "content"), [
    ("dana.ipynb", b'{"cells": [ this is not json'),
    ("dana.ipynb", json.dumps({"nbformat": 4, "cells": "nope"}).encode()),
    ("ada.zip", b"PK\x03\x04 not really a zip"),
    ("ada.tar.gz", b"\x1f\x8b\x08 not really gzip"),
])
def test_unreadable_files(ffn: Assignment, tmp_path: Path, name: str, content: bytes) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    assert_failed(take(ffn, source, tmp_path), FailureKind.INTAKE, name)


def test_truncated_tar_gz(ffn: Assignment, tmp_path: Path) -> None:
    whole = make_tar(tmp_path / "whole.tar.gz", {"ffn.py": FFN.encode() * 2000, "b.py": bytes(range(256)) * 400})
    source = tmp_path / "ada.tar.gz"
    source.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert_failed(take(ffn, source, tmp_path), FailureKind.INTAKE, "ada.tar.gz")


def patch_zip(path: Path, offset: int, value: int) -> Path:
    """Overwrite one 16-bit field of the only member's local and central headers (flags at 6/8, method at 8/10)."""
    data = bytearray(path.read_bytes())
    for signature, shift in ((b"PK\x03\x04", 0), (b"PK\x01\x02", 2)):
        at = data.index(signature) + offset + shift
        data[at:at + 2] = struct.pack("<H", value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", ["deflate stream", "encrypted", "unknown method", "bad bzip2"])
def test_zip_with_an_unreadable_member(ffn: Assignment, tmp_path: Path, damage: str) -> None:
    source = make_zip(tmp_path / "ada.zip", {"ffn.py": FFN.encode() * 500})
    if damage == "deflate stream":
        data = bytearray(source.read_bytes())
        data[len(data) // 3:len(data) // 3 + 8] = b"\xff" * 8
        source.write_bytes(bytes(data))
    else:
        flag, method = {"encrypted": (6, 1), "unknown method": (8, 99), "bad bzip2": (8, zipfile.ZIP_BZIP2)}[damage]
        patch_zip(source, flag, method)
    assert_failed(take(ffn, source, tmp_path), FailureKind.INTAKE, "ada.zip", "cannot be unpacked")


@pytest.mark.parametrize("members", [
    {"a" * 300 + ".py": b""},
    {"ffn.py": b"", "ffn.py/x.py": b""},
], ids=["name too long", "file and folder of one name"])
def test_unwritable_entries(ffn: Assignment, tmp_path: Path, members: dict[str, bytes]) -> None:
    assert_failed(take(ffn, make_zip(tmp_path / "ada.zip", members), tmp_path), FailureKind.INTAKE, "cannot be written")


def test_hoisting_a_folder_holding_its_own_name(ffn: Assignment, tmp_path: Path) -> None:
    intake = take(ffn, make_zip(tmp_path / "ada.zip", {"hw/hw/ffn.py": FFN.encode()}), tmp_path)
    assert intake.failure is None and intake.info.files == ["ffn.py"]


def test_unsupported_and_missing_sources(ffn: Assignment, tmp_path: Path) -> None:
    (tmp_path / "ada.rar").write_bytes(b"Rar!")
    assert_failed(take(ffn, tmp_path / "ada.rar", tmp_path), FailureKind.INTAKE, "ada.rar")
    assert_failed(take(ffn, tmp_path / "nobody.zip", tmp_path), FailureKind.INTAKE, "nobody.zip", "does not exist")


def test_non_utf8_source_is_converted_with_a_note(ffn: Assignment, tmp_path: Path) -> None:
    text = "# Réseau de neurones\n" + FFN
    folder = make_folder(tmp_path / "ada", {"ffn.py": text.encode("cp1252")})
    intake = take(ffn, folder, tmp_path)
    assert intake.failure is None
    assert (intake.folder / "ffn.py").read_bytes() == text.encode("utf-8")
    assert any("UTF-8" in note for note in intake.info.notes)


def test_missing_required_file(ffn: Assignment, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "ada", {"model.py": FFN.encode(), "train.py": b"", "README.md": b"hi\n"})
    intake = take(ffn, folder, tmp_path)
    assert_failed(intake, FailureKind.MISSING_FILE, "ffn.py")


def test_test_configuration_in_a_submission_is_ignored(ffn: Assignment, tmp_path: Path) -> None:
    members = {"ffn.py": FFN.encode(), "conftest.py": b"import os; os._exit(0)\n", "pytest.ini": b"[pytest]\n"}
    intake = take(ffn, make_zip(tmp_path / "ada.zip", members), tmp_path)
    assert intake.failure is None and intake.info.files == ["ffn.py"]
    assert sum("Ignored" in note for note in intake.info.notes) == 2


def test_non_utf8_member_name_fails_cleanly(ffn: Assignment, tmp_path: Path) -> None:
    source = tmp_path / "ada.tar.gz"
    with tarfile.open(source, "w:gz", format=tarfile.GNU_FORMAT) as archive:
        for name in ("ffn.py", "caf\udce9.txt"):  # the raw byte 0xe9: a Latin-1 file name
            archive.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    assert_failed(take(ffn, source, tmp_path), FailureKind.INTAKE, "UTF-8")


def test_a1_dataset_zip_is_taken_in(tmp_path: Path) -> None:
    assignment = load_assignment("a1_dataset")
    intake = take(assignment, make_zip(tmp_path / "ben.zip", {"cifar_dataset.py": b"X = 1\n"}), tmp_path)
    assert intake.failure is None and intake.info.files == ["cifar_dataset.py"]


def test_hash_depends_on_content_not_on_packaging(ffn: Assignment, tmp_path: Path) -> None:
    members = {"ffn.py": FFN.encode(), "lib/extra.py": b"Y = 2\n"}
    folder = receive(ffn, make_folder(tmp_path / "ada", members), tmp_path / "a").info.sha256
    zipped = receive(ffn, make_zip(tmp_path / "ada.zip", members), tmp_path / "b").info.sha256
    changed = receive(ffn, make_zip(tmp_path / "c.zip", members | {"lib/extra.py": b"Y = 3\n"}), tmp_path / "c")
    assert folder == zipped
    assert changed.info.sha256 != folder


@pytest.mark.parametrize(("name", "expected"), [
    ("ada.zip", "ada"), ("ben.tar.gz", "ben"), ("cy/", "cy"), ("dana.ipynb", "dana"), ("ed.py", "ed"),
])
def test_student_id_for(name: str, expected: str) -> None:
    assert student_id_for(Path(name)) == expected


@pytest.mark.parametrize("stub_changed", [False, True])
def test_the_notebook_handed_in_beside_the_untouched_stub_is_graded(stub_changed: bool, tmp_path: Path) -> None:
    """A student who filled in the notebook handout and zipped the whole assignment folder, stub included: the
    notebook is their work. A .py they changed is still the one graded."""
    a1 = load_assignment("a1_dataset")
    stub = (a1.folder / "cifar_dataset.py").read_bytes() + (b"# mine\n" if stub_changed else b"")
    work = nbformat.writes(notebook_of_module(a1.solution_dir / "cifar_dataset.py")).encode()
    source = make_zip(tmp_path / "dana.zip", {"a1_dataset/cifar_dataset.py": stub,
                                              "a1_dataset/cifar_dataset.ipynb": work, "a1_dataset/README.md": b"#"})
    intake = receive(a1, source, tmp_path / "out")
    assert intake.failure is None
    graded = (intake.folder / "cifar_dataset.py").read_text()
    assert ("# END PROMPT" in graded) != stub_changed  # the reference's solution markers, which the stub lacks
    assert (intake.notebook is None) == stub_changed
    note = "Graded cifar_dataset.ipynb, not cifar_dataset.py beside it: that is the handout's stub, unchanged."
    assert (note in intake.info.notes) != stub_changed
