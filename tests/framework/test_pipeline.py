"""The whole engine on one submission at a time, on the tiny synthetic data set (no real data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.config import load_assignment
from grader.models import Report
from grader.pipeline import GradeOptions, grade

pytestmark = pytest.mark.slow


@pytest.fixture
def options(synthetic_cifar: Path, isolated_cache: Path) -> GradeOptions:
    return GradeOptions(data_root=synthetic_cifar, student_id="student")


def test_reference_earns_every_check_and_a_real_metric(options: GradeOptions, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    report = grade(assignment, assignment.solution_dir, tmp_path / "out", options)
    assert report.failures == []
    assert all(check.outcome == "passed" for check in report.checks)
    assert report.training is not None and report.training.epochs
    assert report.metrics is not None and report.metrics.samples == 64
    assert report.metrics.confusion[0][0] + report.metrics.confusion[1][1] == round(report.metrics.accuracy * 64)
    assert report.environment.data_fingerprint and report.environment.sandbox in ("bubblewrap", "rlimits")
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.json", "report.md", "report.html", "report-ta.html", "results.json"} <= written
    assert Report.model_validate_json((tmp_path / "out" / "report.json").read_text()) == report


def test_stub_earns_nothing_and_says_why(options: GradeOptions, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    report = grade(assignment, assignment.folder / "ffn.py", tmp_path / "out", options)
    assert report.score.total == 0
    assert report.training is None and report.metrics is None
    assert any(f.kind == "wrong_kind" and "EPOCHS" in f.message for f in report.failures)
    assert all(item.reason for item in report.score.items)


def test_a_budget_overrun_keeps_the_last_finished_epoch(options: GradeOptions, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assignment = load_assignment("a2_ffn")
    training = assignment.training.model_copy(update={"budget_seconds": {"cpu": 6.0}, "grace_seconds": 4.0})
    slow = assignment.model_copy(update={"training": training})
    source = (assignment.solution_dir / "ffn.py").read_text()
    submission = tmp_path / "ffn.py"
    submission.write_text(source + "\n\n_train = train_one_epoch\n\n"
                          "def train_one_epoch(model, loader, loss_fn, optimizer, device):\n"
                          "    import time\n"
                          "    loss = _train(model, loader, loss_fn, optimizer, device)\n"
                          "    time.sleep(2.0 if not hasattr(time, 'seen') else 60)\n"
                          "    time.seen = True\n"
                          "    return loss\n"
                          "\nEPOCHS = 5\n")
    report = grade(slow, submission, tmp_path / "out", options)
    assert report.training is not None
    assert report.training.stopped == "killed"
    assert len(report.training.epochs) == 1
    assert report.training.seconds <= 6.0 + 4.0 + 1.5
    assert report.metrics is not None
    assert json.loads((tmp_path / "out" / "results.json").read_text())["score"] == report.score.total
