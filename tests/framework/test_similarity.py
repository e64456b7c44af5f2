"""The similarity stage on a generated class: disguised copies of real solutions are listed, independent solutions
of the same stub (sharing the stub and the book's training loop) are not, and only TAs see either."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from bench.similarity_set import Member, copied_pairs, independent_pairs, write_class
from grader import cli
from grader.batch import BatchOptions, discover, run_batch
from grader.config import Assignment, load_assignment
from grader.graded_code import keep_graded_code
from grader.intake import receive
from grader.models import Failure, FailureKind, Report
from grader.pipeline import GradeOptions, failed_report
from grader.reports import write_all
from grader.similarity import compare, course_material, folder_sources, run_similarity

A2 = load_assignment("a2_ffn")
COPIED = ["reference", "eli", "fay", "dana", "bo", "cai"]  # originals with disguised copies; the rest stay alone
LISTED = re.compile(r"^- (\S+) and (\S+?)(?: \(archive\))?: ", re.MULTILINE)


def graded_without_running(assignment: Assignment, source: Path, out_dir: Path, options: GradeOptions) -> Report:
    """What a grading leaves for the similarity stage (the report and the graded code), running no code."""
    with tempfile.TemporaryDirectory() as tmp:
        intake = receive(assignment, source, Path(tmp) / "submission", options.student_id)
        keep_graded_code(intake.folder, out_dir)
    report = failed_report(assignment, source, intake.info.student_id, Failure(
        stage="grader", kind=FailureKind.CRASH, message="Not graded: this test only keeps the graded code."))
    report.submission = intake.info
    write_all(report, assignment, out_dir)
    return report


def batch(assignment: Assignment, submissions: Path, out: Path) -> list[Report]:
    return run_batch(assignment, discover(submissions), out, BatchOptions(), grade_one=graded_without_running)


def listed_pairs(summary_md: str) -> set[frozenset[str]]:
    return {frozenset(match) for match in LISTED.findall(summary_md)}


@pytest.fixture(scope="module")
def a2_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Member]]:
    folder = tmp_path_factory.mktemp("a2") / "submissions"
    return folder, write_class("a2_ffn", folder, COPIED)


@pytest.fixture(scope="module")
def a2_batch(a2_class: tuple[Path, list[Member]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a2-batch")
    batch(A2, a2_class[0], out)
    return out


def test_the_batch_summary_lists_every_copied_pair_and_no_independent_one(
        a2_class: tuple[Path, list[Member]], a2_batch: Path) -> None:
    _, members = a2_class
    assert len(members) == 6 * len(COPIED) + 7 and len(copied_pairs(members)) == 90
    listed = listed_pairs((a2_batch / "summary.md").read_text())
    assert listed == copied_pairs(members)
    assert not listed & independent_pairs(members)


def test_each_listed_pair_has_a_self_contained_side_by_side_view_linked_from_both_summaries(a2_batch: Path) -> None:
    md, html = (a2_batch / "summary.md").read_text(), (a2_batch / "summary.html").read_text()
    views = sorted((a2_batch / "_similarity").glob("*.html"))
    assert len(views) == 90
    for view in views:
        link = f"_similarity/{view.name}"
        assert f"]({link})" in md and f'href="{link}"' in html
    page = (a2_batch / "_similarity" / "eli--eli_all.html").read_text()
    assert page.count("<mark>") >= 3 and "For TAs only" in page and "% of eli's own code" in page
    assert not re.search(r"(src|href)=\"?https?:", page)  # no CDN: the page works offline


def test_students_views_never_mention_the_similarity_stage(a2_batch: Path) -> None:
    for view in [*a2_batch.glob("*/report.md"), *a2_batch.glob("*/report.html")]:
        text = view.read_text()
        assert "similarity" not in text.lower() and "eli_all" not in text.replace(view.parent.name, ""), view


def test_the_discount_is_what_keeps_independent_pairs_out(a2_class: tuple[Path, list[Member]]) -> None:
    folder, members = a2_class
    sources = folder_sources(A2, folder, archived=False)
    counted = {discount: {frozenset((m.pair.first, m.pair.second))
                          for m in compare(A2, sources, course_material(A2), discount)[0]}
               for discount in (True, False)}
    assert counted[True] == copied_pairs(members)
    assert len(counted[False] & independent_pairs(members)) >= 10  # e.g. bo and finn, both on the book's loop


def test_a3_copies_are_listed_and_independent_solutions_are_not(tmp_path: Path) -> None:
    a3 = load_assignment("a3_cnn")
    members = write_class("a3_cnn", tmp_path / "a3")
    matches, _ = compare(a3, folder_sources(a3, tmp_path / "a3", archived=False), course_material(a3))
    assert {frozenset((m.pair.first, m.pair.second)) for m in matches} == copied_pairs(members)


def test_byte_identical_files_are_listed_even_when_the_class_discount_removes_all_their_code(tmp_path: Path) -> None:
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    reference = A2.solution_dir / "ffn.py"
    for n in range(A2.similarity.boilerplate_min_submissions + 2):
        shutil.copyfile(reference, submissions / f"same{n}.py")
    shutil.copyfile(A2.folder / "ffn.py", submissions / "stub_only.py")
    shutil.copyfile(A2.folder / "ffn.py", submissions / "stub_again.py")
    batch(A2, submissions, tmp_path / "out")
    result = run_similarity(A2, sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir()
                                       and not p.name.startswith("_")), tmp_path / "out")
    assert result.class_boilerplate > 0 and all(pair.duplicate for pair in result.pairs)
    n = A2.similarity.boilerplate_min_submissions + 2
    assert len(result.pairs) == n * (n - 1) // 2
    assert not any("stub" in pair.first + pair.second for pair in result.pairs)  # the stub is course material


def test_an_earlier_terms_archive_is_compared_with_the_class_only(tmp_path: Path, a2_batch: Path) -> None:
    archive = tmp_path / "term-2025"
    archive.mkdir()
    shutil.copyfile(A2.solution_dir / "ffn.py", archive / "old_ref.py")
    shutil.copyfile(A2.solution_dir / "ffn.py", archive / "old_ref_twin.py")
    out = tmp_path / "out"
    shutil.copytree(a2_batch, out)
    folders = sorted(p for p in out.iterdir() if (p / "report.json").is_file())
    result = run_similarity(A2, folders, out, [archive])
    archived = [pair for pair in result.pairs if pair.archived]
    assert result.archived == 2
    assert {pair.second for pair in archived} == {"term-2025~old_ref", "term-2025~old_ref_twin"}
    copies = {f"reference_{how}" for how in ("renamed", "reordered", "dead_code", "all", "notebook")}
    assert {pair.first for pair in archived} == {"reference", *copies}


def test_the_command_rewrites_the_summary_and_says_what_is_wrong_in_one_sentence(
        a2_batch: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    shutil.copytree(a2_batch, out)
    (out / "summary.md").unlink()
    monkeypatch.setattr(sys, "argv", ["grader", "similarity", "a2_ffn", str(out)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0
    assert "90 similar pair(s) among 43 submission(s)" in capsys.readouterr().out
    assert len(listed_pairs((out / "summary.md").read_text())) == 90
    monkeypatch.setattr(sys, "argv", ["grader", "similarity", "a2_ffn", str(out), "--archive", str(tmp_path / "no")])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2 and "The archive" in capsys.readouterr().err
