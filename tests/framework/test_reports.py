"""Reports stage: both views, self-contained HTML, Gradescope results, the gradebook and the schema."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from grader.config import Assignment, load_assignment
from grader.errors import GraderError
from grader.models import (
    CheckResult,
    Environment,
    EpochRecord,
    Failure,
    FailureKind,
    Finding,
    Metrics,
    Report,
    Score,
    ScoreItem,
    SubmissionInfo,
    TrainingResult,
)
from grader.reports import gradescope_results, read_report_json, write_all, write_atomic, write_gradebook
from grader.reports.render import budget_used
from grader.reports.schema import stale_schema
from grader.scoring import score
from tests.framework.report_views import html_view, md_view, repeated_lines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SECRET_NODEID = "tests/a3_cnn/test_checks.py::test_zero_grad_secret"
SECRET_DETAILS = "Traceback (most recent call last):\n  File 'cnn.py', line 3\nAssertionError: SECRET_DETAIL"
# From https://gradescope-autograders.readthedocs.io/en/latest/specs/#output-format
GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format",
                  "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output",
                   "output_format", "tags", "visibility", "extra_data"}
GRADESCOPE_VISIBILITY = {"visible", "hidden", "after_due_date", "after_published"}


@pytest.fixture(scope="module")
def a3() -> Assignment:
    return load_assignment("a3_cnn")


NOTEBOOK_NOTE = ("Graded dana.ipynb as cnn.py, without the top-level code grading does not need: "
                 "cell 5 (a training loop), cell 6 (a plot).")
STUDENT_TRACEBACK = ("Traceback (most recent call last):\n  Cell 3, line 1 of dana.ipynb, in <module>\n"
                     "    images = np.stack(arrays)\nValueError: need at least one array to stack")


def notebook_report(a3: Assignment) -> Report:
    """A notebook whose kept cell failed at import, graded without bubblewrap, scored by the real scoring."""
    failure = Failure(stage="import", kind=FailureKind.IMPORT_ERROR, details=SECRET_DETAILS,
                      student_traceback=STUDENT_TRACEBACK,
                      message="Cell 3, line 1 of dana.ipynb raised ValueError: need at least one array to stack when "
                              "the grader imported your notebook: top-level code runs at grading time.")
    notes = ["Took the files from the folder hw3/ inside the submission.", NOTEBOOK_NOTE]
    return Report(
        assignment_id=a3.id, assignment_version=a3.version, notes=notes, failures=[failure],
        submission=SubmissionInfo(student_id="dana", source="dana.zip", sha256="cd" * 32, files=["cnn.py"],
                                  notes=notes),
        environment=Environment(grader_version="0.1.0", python="3.11.9", torch_version="2.4.0", device="cpu",
                                seed=0, data_fingerprint="f00d", sandbox="rlimits"),
        score=score(a3, [], None, [failure]),
    )


def make_report(a3: Assignment, student: str, *, failed: bool = False, flagged: bool = False) -> Report:
    """A hand-built report: full marks, failed (no training, failures) or flagged for a TA's review."""
    checks = [
        CheckResult(nodeid=f"tests/a3_cnn/test_checks.py::test_{g.name}", group=g.name, outcome="passed",
                    points=g.points, max_points=g.points, seconds=0.2)
        for g in a3.checks
    ]
    items = [ScoreItem(name=g.name, title=g.title, points=g.points, max_points=g.points, reason="All checks passed.")
             for g in a3.checks]
    failures: list[Failure] = []
    integrity: list[Finding] = []
    training = metrics = None
    if failed:
        checks.append(CheckResult(nodeid=SECRET_NODEID, group="training", outcome="failed", points=0,
                                  max_points=5, message="gradients were not zeroed", details=SECRET_DETAILS))
        items[3] = items[3].model_copy(update={"points": 10.0, "reason": "1 of 3 checks failed."})
        items.append(ScoreItem(name="accuracy", title="Test accuracy", points=0, max_points=a3.metric.points,
                               reason="The model was not trained.", visibility="hidden"))
        failures.append(Failure(stage="training", kind=FailureKind.NAN_LOSS, message="The loss became NaN in epoch 1.",
                                details=SECRET_DETAILS.replace("line 3", "line 9")))
    else:
        training = TrainingResult(device="cpu", epochs_planned=3, stopped="completed", budget_seconds=360,
                                  parameters=123_456, seconds=90.0, validation_images=1000, untrained_metric=0.5,
                                  keep="best", kept_epoch=2, epochs=[
                                      EpochRecord(epoch=e, loss=0.7 - 0.1 * e, train_metric=0.6 + 0.1 * e,
                                                  validation_metric=(0.8, 0.9, 0.85)[e - 1], seconds=30)
                                      for e in (1, 2, 3)])
        metrics = Metrics(value=0.9, per_class_accuracy={"airplane": 0.92, "bird": 0.88},
                          confusion=[[920, 80], [120, 880]], perturbed_value=0.6 if flagged else 0.89,
                          perturbation="hflip", perturbation_gap=0.3 if flagged else 0.01,
                          samples=2000)
        items.append(ScoreItem(name="accuracy", title="Test accuracy", points=a3.metric.points,
                               max_points=a3.metric.points, reason="Accuracy 90.0% reaches full credit."))
        if flagged:
            integrity.append(Finding(rule="accuracy", value=0.9, limit=0.88, action="review",
                                     message="The accuracy 0.900 is above what the allowed layers reach."))
    total = sum(item.points for item in items)
    notes = ["Ignored __MACOSX/.", "Kept <cnn.py> & co."]
    return Report(
        assignment_id=a3.id, assignment_version=a3.version, notes=notes,  # the pipeline copies the intake notes
        submission=SubmissionInfo(student_id=student, source=f"/in/{student}.zip", sha256="ab" * 32,
                                  files=["cnn.py"], notes=notes),
        environment=Environment(grader_version="0.1.0", python="3.11.9", torch_version="2.4.0", device="cpu",
                                seed=0, data_fingerprint="f00d", sandbox="rlimits" if failed else "bubblewrap"),
        checks=checks, training=training, metrics=metrics, failures=failures, integrity=integrity,
        score=Score(total=total, max_total=a3.total_points, items=items, summary=f"{total:g} of 100 points."),
        seconds=123.4,
    )


@pytest.fixture(scope="module")
def written(a3: Assignment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each kind of report written with write_all into its own folder."""
    root = tmp_path_factory.mktemp("reports")
    reports = {"full": make_report(a3, "alice"), "failed": make_report(a3, "bob", failed=True),
               "flagged": make_report(a3, "carol", flagged=True), "notebook": notebook_report(a3)}
    folders = {name: root / report.submission.student_id for name, report in reports.items()}
    for name, report in reports.items():
        write_all(report, a3, folders[name])
    return folders


def read(folder: Path, name: str) -> str:
    return (folder / name).read_text(encoding="utf-8")


def test_write_all_writes_every_file(written: dict[str, Path]) -> None:
    names = {p.name for p in written["full"].iterdir()}
    assert names == {"report.json", "results.json", "report.md", "report.html", "report-ta.md", "report-ta.html",
                     "training.png", "confusion.png"}
    assert {p.name for p in written["failed"].iterdir() if p.suffix == ".png"} == set()


@pytest.mark.parametrize("suffix", ["md", "html"])
def test_student_view_hides_hidden_checks_and_tracebacks(written: dict[str, Path], suffix: str) -> None:
    student, ta = read(written["failed"], f"report.{suffix}"), read(written["failed"], f"report-ta.{suffix}")
    for secret in (SECRET_NODEID, "SECRET_DETAIL", "Traceback", "gradients were not zeroed", "/in/bob.zip"):
        assert secret not in student
        assert secret in ta
    assert "The loss became NaN in epoch 1." in student
    assert "1 of 3 checks failed." in student
    assert "The model was not trained." not in student and "The model was not trained." in ta
    assert "Ignored __MACOSX/." in student


@pytest.mark.parametrize("suffix", ["md", "html"])
def test_flag_and_sandbox_warning_only_in_ta_view(written: dict[str, Path], suffix: str) -> None:
    assert "Flagged for review" in read(written["flagged"], f"report-ta.{suffix}")
    assert "Flagged for review" not in read(written["flagged"], f"report.{suffix}")
    assert "Flagged for review" not in read(written["full"], f"report-ta.{suffix}")
    assert "resource limits only" in read(written["failed"], f"report-ta.{suffix}")
    assert "resource limits only" not in read(written["full"], f"report-ta.{suffix}")


@pytest.mark.parametrize("name", ["report.html", "report-ta.html"])
def test_html_is_self_contained(written: dict[str, Path], name: str) -> None:
    html = read(written["full"], name)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html
    assert "Kept &lt;cnn.py&gt; &amp; co." in html
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 2
    assert all(base64.b64decode(uri).startswith(PNG_MAGIC) for uri in uris)


def test_markdown_links_the_png_files(written: dict[str, Path]) -> None:
    md = read(written["full"], "report.md")
    for png in ("training.png", "confusion.png"):
        assert f"]({png})" in md
        assert (written["full"] / png).read_bytes().startswith(PNG_MAGIC)
    assert "| Test accuracy | 50 / 50 | Accuracy 90.0% reaches full credit. |" in md


@pytest.mark.parametrize("kind", ["full", "failed", "flagged", "notebook"])
def test_results_json_follows_gradescope_spec(written: dict[str, Path], kind: str) -> None:
    results = json.loads(read(written[kind], "results.json"))
    report = read_report_json(written[kind] / "report.json")
    assert set(results) <= GRADESCOPE_TOP and results["stdout_visibility"] in GRADESCOPE_VISIBILITY
    assert results["score"] == report.score.total
    assert len(results["tests"]) == len(report.score.items)
    for test, item in zip(results["tests"], report.score.items, strict=True):
        assert set(test) <= GRADESCOPE_TEST and test["visibility"] in GRADESCOPE_VISIBILITY
        assert (test["score"], test["max_score"], test["visibility"]) == (item.points, item.max_points, item.visibility)
    assert "SECRET_DETAIL" not in json.dumps(results)
    assert all(f.message in results["output"] for f in report.failures)
    assert all(note in results["output"] for note in report.notes)
    assert (STUDENT_TRACEBACK in results["output"]) == (kind == "notebook")


@pytest.mark.parametrize("kind", ["full", "failed"])
def test_gradescope_leaderboard_entries_when_asked(written: dict[str, Path], kind: str) -> None:
    report = read_report_json(written[kind] / "report.json")
    assert "leaderboard" not in gradescope_results(report)
    board = gradescope_results(report, leaderboard=True).get("leaderboard")
    # https://gradescope-autograders.readthedocs.io/en/latest/leaderboards/: a list of {name, value[, order]}
    assert board == ([{"name": "Test accuracy", "value": 0.9}] if kind == "full" else None)
    uncredited = report.model_copy(update={"integrity": [Finding(rule="perturbation_gap", value=0.5, limit=0.1,
                                                                 action="no_credit", message="A lookup table.")]})
    assert "leaderboard" not in gradescope_results(uncredited, leaderboard=True), "no place for uncredited accuracy"


def test_gradebook_has_one_row_per_report(a3: Assignment, written: dict[str, Path], tmp_path: Path) -> None:
    reports = [read_report_json(folder / "report.json") for folder in written.values()]
    paths = write_gradebook(reports, a3, tmp_path, report_dirs=list(written.values()))
    assert {p.name for p in paths} == {"grades.csv", "summary.md", "summary.html", "scores.png", "accuracy.png"}
    with (tmp_path / "grades.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    groups = [g.name for g in a3.checks]
    assert list(rows[0]) == ["student_id", "sha256", "total", "max_total", "percent", *groups, "accuracy_points",
                             "accuracy", "perturbed_accuracy", "flagged_for_review", "integrity", "failure_kinds",
                             "seconds", "report"]
    assert [row["student_id"] for row in rows] == ["alice", "bob", "carol", "dana"]
    assert rows[1]["failure_kinds"] == "nan_loss" and rows[1]["accuracy"] == ""
    assert [row["flagged_for_review"] for row in rows] == ["false", "", "true", ""]
    assert [row["integrity"] for row in rows] == ["", "", "accuracy:review", ""]
    assert (tmp_path / rows[0]["report"]).resolve() == (written["full"] / "report-ta.html").resolve()
    summary = read(tmp_path, "summary.md")
    assert "| nan_loss | 1 | The loss became NaN in epoch 1. |" in summary
    assert re.search(r"## Flagged for review\n\n- \[carol\]", summary)
    html = read(tmp_path, "summary.html")
    assert html.count("data:image/png;base64,") == 2 and "http" not in html


def test_write_atomic_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.txt"
    write_atomic(target, "old")
    write_atomic(target, b"new")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "new"
    monkeypatch.setattr("os.replace", lambda *_: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_atomic(target, "lost")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"] and target.read_text() == "new"


def test_write_all_removes_a_stale_report_json_first(a3: Assignment, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    report = make_report(a3, "dave", failed=True)
    write_all(report, a3, tmp_path)
    assert read_report_json(tmp_path / "report.json") == report
    monkeypatch.setattr("grader.reports.write_gradescope_results", lambda *_: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        write_all(report, a3, tmp_path)
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(("content", "phrase"), [
    ("{not json", "is not valid JSON"),
    ('{"schema_version": 999}', "schema version 999"),
    ('{"schema_version": 3, "assignment_id": "a3_cnn"}', "does not match the report schema"),
    (None, "There is no report"),
])
def test_read_report_json_errors_are_one_sentence(tmp_path: Path, content: str | None, phrase: str) -> None:
    path = tmp_path / "report.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(GraderError) as caught:
        read_report_json(path)
    message = str(caught.value)
    assert phrase in message and message.endswith(".") and "\n" not in message


def test_committed_schema_is_in_sync() -> None:
    assert stale_schema(Path(__file__).resolve().parents[2] / "schema" / "report.schema.json") is False


KINDS = ["full", "failed", "flagged", "notebook"]


@pytest.mark.parametrize("stem", ["report", "report-ta"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_line_appears_twice(written: dict[str, Path], kind: str, stem: str) -> None:
    for view in (md_view(written[kind] / f"{stem}.md"), html_view(written[kind] / f"{stem}.html")):
        lines, _, _ = view
        assert repeated_lines(lines) == []


@pytest.mark.parametrize("stem", ["report", "report-ta"])
@pytest.mark.parametrize("kind", KINDS)
def test_markdown_and_html_carry_the_same_sections(written: dict[str, Path], kind: str, stem: str) -> None:
    _, md_headings, md_tables = md_view(written[kind] / f"{stem}.md")
    _, html_headings, html_tables = html_view(written[kind] / f"{stem}.html")
    assert md_headings == html_headings and "Score" in md_headings
    assert md_tables == html_tables
    if kind == "full":
        assert ["Epoch", "Loss", "Training accuracy", "Validation accuracy", "Seconds"] in html_tables


@pytest.mark.parametrize("suffix", ["md", "html"])
def test_the_student_sees_their_own_traceback_once(written: dict[str, Path], suffix: str) -> None:
    student = read(written["notebook"], f"report.{suffix}")
    assert "Cell 3, line 1 of dana.ipynb, in &lt;module&gt;" in student if suffix == "html" else \
        "Cell 3, line 1 of dana.ipynb, in <module>" in student
    assert "SECRET_DETAIL" not in student and "SECRET_DETAIL" not in read(written["notebook"], f"report-ta.{suffix}")
    assert student.count("cell 5 (a training loop)") == 1
    assert "resource limits only" not in student
    assert read(written["notebook"], f"report-ta.{suffix}").count("resource limits only") == 1


def test_grader_report_rerenders_one_students_folder(written: dict[str, Path], tmp_path: Path) -> None:
    from grader.cli import rerender

    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "report.json").write_bytes((written["full"] / "report.json").read_bytes())
    rerender(folder)
    assert read(folder, "report-ta.md") == read(written["full"], "report-ta.md")
    assert not (folder / "grades.csv").exists(), "one student's folder is not a batch"


def test_batch_summary_table_names_where_points_were_lost(a3: Assignment) -> None:
    from rich.console import Console

    from grader.cli import _summary_table

    full = make_report(a3, "alice")
    first_lost = full.score.items[0].model_copy(update={"points": 0.0, "reason": "No zero_grad."})
    score = full.score.model_copy(update={"items": [first_lost, *full.score.items[1:]]})
    lost = full.model_copy(update={"submission": full.submission.model_copy(update={"student_id": "eve"}),
                                   "score": score})
    console = Console(width=300, record=True)
    console.print(_summary_table(a3, [full, lost, make_report(a3, "bob", failed=True)]))
    rows = {line.split("│")[1].strip(): line for line in console.export_text().splitlines() if line.count("│") > 3}
    assert f"{a3.checks[0].title}: 0 / {a3.checks[0].points:g}" in rows["eve"]
    assert "The loss became NaN in epoch 1." in rows["bob"]
    assert rows["alice"].split("│")[-2].strip() == ""


@pytest.mark.parametrize(("wall", "busy"), [(12.0, False), (60.0, True)])
def test_budget_sentence_says_when_other_work_slowed_the_machine(wall: float, busy: bool) -> None:
    training = TrainingResult(device="cpu", epochs_planned=8, stopped="completed", budget_seconds=180,
                              budget_clock="cpu", budget_used=9.0, validation_seconds=1.0, seconds=wall)
    sentence = budget_used(training)
    assert sentence.startswith("9.0 of its 180 s CPU budget")
    assert ("wall time was 6.0 times its CPU time per thread" in sentence) is busy


@pytest.mark.parametrize("suffix", ["md", "html"])
def test_a_failure_that_explains_every_row_is_said_once(a3: Assignment, written: dict[str, Path], suffix: str) -> None:
    student = read(written["notebook"], f"report.{suffix}")
    assert student.count("raised ValueError: need at least one array to stack") == 1
    assert student.count("Not earned: see “What went wrong”.") == len(a3.checks) + 1


def reconstruction_report(a4: Assignment, mse: float) -> Report:
    """A graded a4 report whose test error is `mse`, as the pipeline writes one."""
    training = TrainingResult(device="cpu", epochs_planned=2, stopped="completed", budget_seconds=60,
                              validation_images=500, untrained_metric=0.06, keep="best", kept_epoch=2, epochs=[
                                  EpochRecord(epoch=e, loss=0.02 / e, train_metric=0.02 / e,
                                              validation_metric=0.021 / e, seconds=3) for e in (1, 2)])
    metrics = Metrics(task="reconstruction", name="mean squared error", unit="per pixel and channel",
                      higher_is_better=False, value=mse, perturbed_value=mse, perturbation="hflip",
                      perturbation_gap=0.0, samples=1000)
    checks = [CheckResult(nodeid=f"test_{g.name}", group=g.name, outcome="passed", points=g.points,
                          max_points=g.points) for g in a4.checks]
    return Report(assignment_id=a4.id, assignment_version=a4.version,
                  submission=SubmissionInfo(student_id="erin", source="erin.py", sha256="cd" * 32,
                                            files=["autoencoder.py"]),
                  environment=Environment(grader_version="0.1.0", python="3.11.9", torch_version="2.4.0",
                                          device="cpu", seed=0, sandbox="bubblewrap"),
                  checks=checks, training=training, metrics=metrics, score=score(a4, checks, metrics, []))


def test_a_reconstruction_report_names_its_error_and_its_direction(tmp_path: Path) -> None:
    a4 = load_assignment("a4_autoencoder")
    report = reconstruction_report(a4, 0.003)
    assert report.score.total == a4.total_points
    write_all(report, a4, tmp_path / "erin")
    md = (tmp_path / "erin" / "report.md").read_text()
    assert ("Mean squared error **0.0030** (per pixel and channel) on the 1,000 hidden test images; lower is "
            "better.") in md
    assert "| Epoch | Loss | Training mean squared error | Validation mean squared error | Seconds |" in md
    assert "| 2 (kept) | 0.0100 | 0.0100 | 0.0105 |" in md and "| Class |" not in md
    assert "the epoch with the lowest validation mean squared error (0.0105)" in md
    assert gradescope_results(report, leaderboard=True)["leaderboard"] == [
        {"name": "Test mean squared error", "value": 0.003, "order": "asc"}]
    write_gradebook([report], a4, tmp_path)
    with (tmp_path / "grades.csv").open(newline="") as file:
        row = next(csv.DictReader(file))
    assert row["mse_points"] == "50.0" and row["mse"] == "0.003" and row["perturbed_mse"] == "0.003"
