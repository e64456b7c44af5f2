"""The whole engine on one submission at a time, on the tiny synthetic data set (no real data needed)."""

from __future__ import annotations

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
    assert report.metrics.value >= 0.95, "the synthetic classes (bright airplanes, dark birds) are easy to learn"
    assert report.training.stopped == "completed" and report.training.budget_clock == "cpu"
    assert report.metrics.confusion[0][0] + report.metrics.confusion[1][1] == round(report.metrics.value * 64)
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
