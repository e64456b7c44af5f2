"""Class folders as Canvas, Gradescope and Moodle download them become one batch entry per student, with the
latest resubmission, the late flag, the roster's names and ids, and a Canvas gradebook; grading is faked."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader import cli
from grader.batch import discover
from grader.config import Assignment, load_assignment
from grader.errors import GraderError
from grader.intake import receive
from grader.lms import Layout, apply_roster, read_class_folder, read_roster
from grader.models import Report, Score, ScoreItem
from grader.pipeline import GradeOptions, failed_report, grader_failure
from grader.reports import write_all

A2 = load_assignment("a2_ffn")


def code(score: float) -> str:
    """A submission whose fake grade is `score` points."""
    return f"SCORE = {score}\n"


def fake_grade(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """Grade by reading SCORE from the submission: the batch's bookkeeping without training anything."""
    intake = receive(assignment, source, out_dir.parent / f".intake-{options.student_id}", options.student_id)
    text = "".join(path.read_text() for path in sorted(intake.folder.rglob("*.py")))
    points = float(re.search(r"SCORE = ([\d.]+)", text + "SCORE = 0")[1])
    report = failed_report(assignment, source, options.student_id or "", grader_failure("fake"))
    item = ScoreItem(name="fake", title="Fake", points=points, max_points=100, reason="read from the file")
    report = report.model_copy(update={"submission": intake.info, "failures": [],
                                       "score": Score(total=points, max_total=100, items=[item], summary="")})
    write_all(report, assignment, out_dir)
    return report


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def canvas_download(folder: Path) -> Path:
    """Ann resubmitted (ffn-1.py is newer), Bob was late, Cy handed in two code files and a text file."""
    return write(folder, {
        "leeann_12345_900001_ffn.py": code(40),
        "leeann_12345_900077_ffn-1.py": code(60),
        "smithbob_LATE_23456_900050_ffn.py": code(70),
        "kimcy_34567_900060_ffn.py": "from helpers import SCORE\n",
        "kimcy_34567_900061_helpers.py": code(90),
        "kimcy_34567_900062_notes.txt": "my notes",
        "notes.txt": "the TA's notes",
    })


GRADESCOPE_METADATA = """\
submission_101:
  :submitters:
  - :name: Ann Lee
    :sid: 'S001'
    :email: ann@uni.edu
  :created_at: 2024-10-01 10:00:00.123456789 -07:00
  :score: 0.0
submission_205:
  :submitters:
  - :name: Ann Lee
    :sid: 'S001'
    :email: ann@uni.edu
  :created_at: 2024-10-02 09:00:00.000000000 -07:00
  :score: 0.0
submission_150:
  :submitters:
  - :name: Bob Smith
    :sid: 'S002'
    :email: bob@uni.edu
  :created_at: 2024-10-03 23:59:00.000000000 -07:00
  :late: true
"""


def gradescope_download(folder: Path) -> Path:
    return write(folder, {
        "submission_metadata.yml": GRADESCOPE_METADATA,
        "submission_101/ffn.py": code(20),
        "submission_205/ffn.py": code(80),
        "submission_150/ffn.py": code(50),
    })


def moodle_download(folder: Path) -> Path:
    return write(folder, {
        "Ann Lee_5550001_assignsubmission_file_/ffn.py": code(65),
        "Bob Smith_5550002_assignsubmission_file_/hw/ffn.py": code(35),
        "Bob Smith_5550002_assignsubmission_onlinetext_/onlinetext.html": "<p>see file</p>",
    })


def test_canvas_latest_resubmission_late_flag_and_several_files(tmp_path: Path) -> None:
    found = read_class_folder(canvas_download(tmp_path / "class"))
    assert found.layout is Layout.CANVAS
    by_id = {s.student_id: s for s in found.submissions}
    assert sorted(by_id) == ["12345", "23456", "34567"]
    assert [p.name for p in by_id["12345"].files] == ["leeann_12345_900077_ffn-1.py"]
    assert by_id["12345"].superseded == ["leeann_12345_900001_ffn.py"]
    assert by_id["23456"].late and not by_id["12345"].late
    assert by_id["34567"].original_names == ["ffn.py", "helpers.py"]
    assert found.ignored == ["kimcy_34567_900062_notes.txt", "notes.txt"]

    entries = {e.student_id: e for e in discover(tmp_path / "class", tmp_path / "staged")}
    assert sorted(p.name for p in entries["34567"].source.iterdir()) == ["ffn.py", "helpers.py"]
    assert entries["12345"].source.name == "leeann_12345_900077_ffn-1.py"


def test_gradescope_newest_submission_per_student(tmp_path: Path) -> None:
    found = read_class_folder(gradescope_download(tmp_path / "class"))
    assert found.layout is Layout.GRADESCOPE
    by_id = {s.student_id: s for s in found.submissions}
    assert sorted(by_id) == ["S001", "S002"]
    assert by_id["S001"].files == [tmp_path / "class" / "submission_205"]
    assert by_id["S001"].superseded == ["submission_101"] and by_id["S001"].name == "Ann Lee"
    assert by_id["S002"].late and not by_id["S001"].late


def test_moodle_file_submissions_only(tmp_path: Path) -> None:
    found = read_class_folder(moodle_download(tmp_path / "class"))
    assert found.layout is Layout.MOODLE
    assert [(s.student_id, s.name) for s in found.submissions] == [("5550001", "Ann Lee"), ("5550002", "Bob Smith")]
    assert found.ignored == ["Bob Smith_5550002_assignsubmission_onlinetext_"]


def test_plain_folder_ignores_what_cannot_be_a_submission(tmp_path: Path) -> None:
    found = read_class_folder(write(tmp_path / "class", {"ann.py": code(1), "bob/ffn.py": code(2), "cy.rar": "",
                                                         "notes.txt": "", "grades.csv": ""}))
    assert found.layout is Layout.PLAIN
    assert [s.student_id for s in found.submissions] == ["ann", "bob", "cy.rar"]  # cy's report says why not
    assert found.ignored == ["grades.csv", "notes.txt"]


@pytest.mark.parametrize("bad", ["mixed", "broken yaml", "not gradescope's"])
def test_unreadable_folders_are_one_sentence(tmp_path: Path, bad: str) -> None:
    folder = tmp_path / "class"
    if bad == "mixed":
        canvas_download(folder)
        moodle_download(folder)
    else:
        text = "submission_1: [unclosed" if bad == "broken yaml" else "- just\n- a list\n"
        write(folder, {"submission_metadata.yml": text, "submission_1/ffn.py": code(1)})
    with pytest.raises(GraderError, match=r"(more than one layout, Canvas .*; Moodle|Gradescope)"):
        read_class_folder(folder)


def test_roster_gives_names_and_sis_ids(tmp_path: Path) -> None:
    roster = write(tmp_path, {"roster.csv": textwrap.dedent("""\
        Student,ID,SIS User ID,SIS Login ID,Section,Old assignment (7)
            Points Possible,,,,,10
        "Lee, Ann",12345,S001,alee,Sec 1,9
        "Smith, Bob",23456,S002,bsmith,Sec 2,
        """)}) / "roster.csv"
    found, unknown = apply_roster(read_class_folder(canvas_download(tmp_path / "class")), read_roster(roster))
    assert unknown == ["34567"]
    ann = next(s for s in found.submissions if s.student_id == "12345")
    assert (ann.name, ann.sis_user_id, ann.sis_login_id, ann.section) == ("Lee, Ann", "S001", "alee", "Sec 1")
    gradescope, unknown = apply_roster(read_class_folder(gradescope_download(tmp_path / "gs")), read_roster(roster))
    assert unknown == [] and {s.canvas_id for s in gradescope.submissions} == {"12345", "23456"}


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(cli, "_grade_function", lambda runner: fake_grade)
    monkeypatch.setattr(cli, "_data_root", lambda assignment, flag: None)
    monkeypatch.setattr(cli, "gpu_count", lambda: 0)
    monkeypatch.setattr(sys, "argv", ["grader", *args])
    try:
        cli.main()
    except SystemExit as exited:
        assert exited.code in (0, None), exited.code


def test_canvas_download_to_uploadable_gradebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    canvas_download(tmp_path / "class")
    roster = write(tmp_path, {"roster.csv": "Student,ID,SIS User ID,SIS Login ID,Section\n"
                                            '"Lee, Ann",12345,S001,alee,Sec 1\n'}) / "roster.csv"
    monkeypatch.chdir(tmp_path)
    run_cli(monkeypatch, "batch", "a2_ffn", "class", "--plain", "--roster", str(roster))
    out = tmp_path / "reports" / "a2_ffn"  # the default --out
    captured = capsys.readouterr()
    assert "12345: 60 / 100" in captured.out and "34567: 90 / 100" in captured.out
    assert "superseded leeann_12345_900001_ffn.py" in captured.err
    assert "Ignored, as not submissions: kimcy_34567_900062_notes.txt, notes.txt." in captured.err
    assert "Not on the roster" in captured.err and "23456" in captured.err

    grades = {row["student_id"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert sorted(grades) == ["12345", "23456", "34567"]
    assert (grades["23456"]["late"], grades["12345"]["late"], grades["12345"]["name"]) == ("true", "false", "Lee, Ann")
    lines = list(csv.reader((out / "canvas.csv").open()))
    assert lines[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{A2.title} (a2_ffn)"]
    assert lines[1] == ["Points Possible", "", "", "", "", "100"]
    assert sorted(lines[2:]) == [["Lee, Ann", "12345", "S001", "alee", "Sec 1", "60"],
                                 ["kimcy", "34567", "", "", "", "90"], ["smithbob", "23456", "", "", "", "70"]]


def test_rerun_says_which_changed_file_it_regrades(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "class", {"ann.py": code(10), "bob.py": code(20)})
    run_cli(monkeypatch, "batch", "a2_ffn", str(folder), "--out", str(tmp_path / "out"), "--plain")
    (folder / "bob.py").write_text(code(30))
    capsys.readouterr()
    run_cli(monkeypatch, "batch", "a2_ffn", str(folder), "--out", str(tmp_path / "out"), "--plain")
    captured = capsys.readouterr()
    assert "ann: 10 / 100 (already graded)" in captured.out and "bob: 30 / 100" in captured.out
    assert "bob's bob.py changed since its report of 20 / 100; grading it again." in captured.err


SLOW_BATCH = """
import sys, time
from grader import cli
from tests.framework.test_lms import fake_grade
def slow(*args):
    time.sleep(1.5)
    return fake_grade(*args)
cli._grade_function = lambda runner: slow
cli._data_root = lambda assignment, flag: None
cli.gpu_count = lambda: 0
sys.argv = ["grader", *sys.argv[1:]]
cli.main()
"""


def test_sigterm_stops_like_ctrl_c_and_leaves_a_partial_gradebook(tmp_path: Path) -> None:
    folder = write(tmp_path / "class", {f"s{i}.py": code(i) for i in range(6)})
    out = tmp_path / "out"
    command = [sys.executable, "-c", SLOW_BATCH, "batch", "a2_ffn", str(folder), "--out", str(out), "--plain"]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[2])}
    batch = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "s0" / "report.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    batch.send_signal(signal.SIGTERM)
    _, stderr = batch.communicate(timeout=60)
    assert batch.returncode == 130
    assert "rerun the same command to grade the rest" in stderr and "Traceback" not in stderr
    graded = [row["student_id"] for row in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))]
    assert 1 <= len(graded) < 6 and graded == [f"s{i}" for i in range(len(graded))]


@pytest.mark.parametrize("bad", ["mixed layouts", "roster without ids"])
def test_a_bad_download_or_roster_is_one_error_line(tmp_path: Path, bad: str, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = canvas_download(tmp_path / "class")
    roster = write(tmp_path, {"roster.csv": "name,grade\nAnn,1\n"}) / "roster.csv"
    if bad == "mixed layouts":
        moodle_download(folder)
    monkeypatch.setattr(sys, "argv", ["grader", "batch", "a2_ffn", str(folder), "--out", str(tmp_path / "out"),
                                      "--roster", str(roster)])
    monkeypatch.setattr(cli, "_data_root", lambda assignment, flag: None)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    lines = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:")
    assert ("more than one layout" if bad == "mixed layouts" else "names no student") in lines[0]
