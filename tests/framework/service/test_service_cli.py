"""`grader course init`, `grader roster import|reissue` and `grader serve`'s start-up errors, as a TA runs them."""

from __future__ import annotations

import csv
import io
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from grader import cli
from grader.course import load_course
from grader.errors import GraderError
from grader.service.db import open_database
from grader.service.exports import class_canvas_csv
from grader.service.settings import ServiceSettings
from grader.service.tables import Person, Role
from grader.service.views import grade_rows

pytestmark = pytest.mark.service


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def grader(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # a runner
    """`grader ARGS` in this process, in a folder, as the installed entry point runs it (GraderError: exit 2)."""

    def run(*args: str, cwd: Path) -> Ran:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["grader", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exited:
            code = exited.code or 0
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def test_course_init_writes_a_course_that_loads_and_never_overwrites(grader, tmp_path: Path) -> None:
    done = grader("course", "init", "--name", 'Deep "Learning"', "--timezone", "Europe/Berlin", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    course = load_course(tmp_path)
    assert course.name == 'Deep "Learning"' and course.timezone == "Europe/Berlin"
    assert [a.id for a in course.assignments] == ["a1_dataset", "a2_ffn", "a3_cnn", "a4_autoencoder", "a5_cifar10"]
    written = (tmp_path / "course.toml").read_text()  # every rule is in the file for the TA to edit, release too
    assert written.count('release = "immediately"  # when students see scores') == len(course.assignments)
    again = grader("course", "init", cwd=tmp_path)
    assert again.returncode == 2 and "exists already" in again.stderr
    elsewhere = grader("course", "init", "--course-dir", "course", cwd=tmp_path)
    assert "`grader roster import roster.csv --course-dir course`" in " ".join(elsewhere.stdout.split())


@pytest.mark.parametrize(("text", "words"), [
    ("name = 'x'\ntimezone = 'Mars/Base'\nmax_upload_mb = 1\n[[assignments]]\nid = 'a1_dataset'\n",
     "unknown time zone"),
    ("name = 'x'\ntimezone = 'UTC'\nmax_upload_mb = 1\n[[assignments]]\nid = 'a9'\n", "unknown assignment 'a9'"),
    ("name = 'x'\ntimezone = 'UTC'\nmax_upload_mb = 1\n[[assignments]]\nid = 'a1_dataset'\ndue = 2026-12-01T10:00:00\n"
     "hard_deadline = 2026-12-02T10:00:00Z\nlate_penalty_per_day = 0.1\nsubmissions_per_day = 1\ncounts = 'best'\n"
     "leaderboard = false\n", "timezone"),
    ("name = 'x'\ntimezone = 'UTC'\nmax_upload_mb = 1\n[[assignments]]\nid = 'a1_dataset'\ndue = 2026-12-03T10:00:00Z\n"
     "hard_deadline = 2026-12-02T10:00:00Z\nlate_penalty_per_day = 0.1\nsubmissions_per_day = 1\ncounts = 'best'\n"
     "leaderboard = false\n", "hard_deadline must not be before due"),
    ("name = \n", "not valid TOML"),
])
def test_a_bad_course_file_is_one_sentence(grader, tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "course.toml").write_text(text)
    with pytest.raises(GraderError, match=words):
        load_course(tmp_path)
    done = grader("serve", "--cluster", "none", "--port", "1", cwd=tmp_path)
    assert done.returncode == 2 and words.split("'")[0] in done.stderr and "Traceback" not in done.stderr


def test_the_database_is_upgraded_by_an_explicit_step(grader, tmp_path: Path) -> None:
    assert grader("course", "init", cwd=tmp_path).returncode == 0
    (tmp_path / "roster.csv").write_text("student_id,name,email\ns1,Ann One,ann@x.edu\n")
    early = grader("roster", "import", "roster.csv", cwd=tmp_path)
    assert early.returncode == 2 and "Traceback" not in early.stderr
    assert "has no schema yet" in early.stderr and "run `grader db upgrade`" in " ".join(early.stderr.split())
    for _ in range(2):  # a second upgrade finds the schema current
        upgraded = grader("db", "upgrade", cwd=tmp_path)
        assert upgraded.returncode == 0 and "is at schema " in upgraded.stdout
    assert grader("roster", "import", "roster.csv", cwd=tmp_path).returncode == 0, "the schema is the newest"
    for url, words in (("nosuchdb://x", "is not usable"), (f"sqlite:///{tmp_path}/none/x.db", "Cannot reach")):
        failed = grader("db", "upgrade", "--database", url, cwd=tmp_path)
        assert failed.returncode == 2 and words in failed.stderr and "Traceback" not in failed.stderr


def test_roster_import_issues_hashed_tokens_once(grader, tmp_path: Path) -> None:
    assert grader("course", "init", cwd=tmp_path).returncode == 0
    assert grader("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "roster.csv").write_text("student_id,name,email\ns1,Ann One,ann@x.edu\ns2,Bob Two,bob@x.edu\n")
    done = grader("roster", "import", "roster.csv", "--tokens-out", "tokens.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tokens = {row["student_id"]: row["token"] for row in csv.DictReader((tmp_path / "tokens.csv").open())}
    assert set(tokens) == {"s1", "s2"} and tokens["s1"] in "".join(done.stdout.split()).replace("│", "")
    assert stat.S_IMODE((tmp_path / "tokens.csv").stat().st_mode) == 0o600
    (tmp_path / "roster.csv").write_text("student_id,name,email\ns1,Ann One,ann@x.edu\ns3,Cy Three,cy@x.edu\n"
                                         "s2,Bob Twofold,bob@new.edu\n")
    (tmp_path / "tas.csv").write_text("student_id,name,email\nta1,Tim,tim@x.edu\n")
    again = grader("roster", "import", "roster.csv", "--tokens-out", "more.csv", cwd=tmp_path)
    assert "tokens unchanged: s1." in again.stdout
    assert "Updated s2: name 'Bob Two' is now 'Bob Twofold'." in again.stdout
    assert "Updated s2: email 'bob@x.edu' is now 'bob@new.edu'." in again.stdout
    tas = grader("roster", "import", "tas.csv", "--ta", cwd=tmp_path)
    assert tas.returncode == 0 and "Added 1 TA(s)" in tas.stdout
    with open_database(ServiceSettings(course_dir=tmp_path).database)() as db:
        people = {p.login: p for p in db.scalars(select(Person))}
    assert set(people) == {"s1", "s2", "s3", "ta1"} and people["ta1"].role is Role.TA
    assert all(tokens["s1"].split(".")[1] not in (p.token_hash, p.token_id) for p in people.values())
    assert (people["s2"].name, people["s2"].email) == ("Bob Twofold", "bob@new.edu")
    reissued = grader("roster", "reissue", "s2", "--tokens-out", "s2.csv", cwd=tmp_path)
    assert reissued.returncode == 0 and tokens["s2"] not in reissued.stdout
    (new_token,) = [row["token"] for row in csv.DictReader((tmp_path / "s2.csv").open())]
    assert new_token in reissued.stdout.split()  # whole, on one line, as the CSV has it
    assert stat.S_IMODE((tmp_path / "s2.csv").stat().st_mode) == 0o600
    unknown = grader("roster", "reissue", "nobody", cwd=tmp_path)
    assert unknown.returncode == 2 and "Nobody with the id 'nobody'" in unknown.stderr


CANVAS_EXPORT = ('Student,ID,SIS User ID,SIS Login ID,Section,A1 (123)\n'
                 '    Points Possible,,,,,100\n'
                 '"One, Ann",1001,s1,ann,Section 1,\n'
                 '"Two, Bob",1002,s2,bob@x.edu,Section 1,\n'
                 '"Student, Test",1099,,,Section 1,\n')


def test_roster_import_reads_canvas_gradebook_export_and_the_canvas_csv_matches_it(grader, tmp_path: Path) -> None:
    assert grader("course", "init", cwd=tmp_path).returncode == 0
    assert grader("db", "upgrade", cwd=tmp_path).returncode == 0
    (tmp_path / "canvas.csv").write_text(CANVAS_EXPORT)
    done = grader("roster", "import", "canvas.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Skipped 1 row(s) without an SIS User ID (such as Canvas's test student): line 5 (Student, Test)." \
        in done.stdout and "Added 2 student(s)" in " ".join(done.stdout.split())
    course = load_course(tmp_path)
    with open_database(ServiceSettings(course_dir=tmp_path).database)() as db:
        people = {p.login: (p.name, p.email) for p in db.scalars(select(Person))}
        exported = class_canvas_csv(grade_rows(db, course, course.assignments[0]), course.assignments[0], False)
    assert people == {"s1": ("One, Ann", "ann"), "s2": ("Two, Bob", "bob@x.edu")}
    rows = list(csv.reader(io.StringIO(exported)))  # Canvas matches its students by SIS User ID and Login ID
    assert [row[:4] for row in rows[2:]] == [["One, Ann", "", "s1", "ann"], ["Two, Bob", "", "s2", "bob@x.edu"]]


@pytest.mark.parametrize(("roster", "words"), [
    ("id,name,email\ns1,Ann,a@x\n", "has no student_id column"),
    ("Student,ID,SIS User ID\nAnn,1,../s1\n", "has characters other than"),
    ("student_id,name,email\ns1,Ann,a@x\ns1,Ann again,b@x\n", "appears twice"),
    ("student_id,name,email\n../s1,Ann,a@x\n", "has characters other than"),
    ("student_id,name,email\n,Ann,a@x\n", "is empty"),
])
def test_a_bad_roster_is_one_sentence(grader, tmp_path: Path, roster: str, words: str) -> None:
    assert grader("course", "init", cwd=tmp_path).returncode == 0
    (tmp_path / "roster.csv").write_text(roster)
    done = grader("roster", "import", "roster.csv", cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr


def test_serve_refuses_an_unusable_database(grader, tmp_path: Path) -> None:
    assert grader("course", "init", cwd=tmp_path).returncode == 0
    for url, words in (("nosuchdb://x", "is not usable"),
                       ("postgresql+psycopg://nobody@127.0.0.1:1/none", "Cannot reach the database")):
        done = grader("serve", "--cluster", "none", "--database", url, cwd=tmp_path)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
