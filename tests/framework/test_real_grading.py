"""On the real CIFAR-10 copy, through the full engine: the references earn full marks with margin, the
stubs earn nothing, and the example submissions earn what their names promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.config import assignment_ids, load_assignment
from grader.paths import examples_dir
from grader.reports import read_report_json

pytestmark = [pytest.mark.real_data, pytest.mark.slow]
GRADER = str(Path(sys.executable).with_name("grader"))
# The references must clear full credit by this much (accuracy; mean squared error), so a noisy run cannot drop
# them below it.
MARGIN = {"classification": 0.015, "reconstruction": 0.001}


def test_check_solutions_passes(check_solutions: tuple[Path, subprocess.CompletedProcess]) -> None:
    _, completed = check_solutions
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-2000:]


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_reference_full_marks_within_budget(assignment_id: str,
                                            check_solutions: tuple[Path, subprocess.CompletedProcess]) -> None:
    assignment = load_assignment(assignment_id)
    report = read_report_json(check_solutions[0] / assignment_id / "solution" / "report.json")
    assert report.score.total == assignment.total_points, report.score.summary
    if assignment.metric is not None:
        full, margin = assignment.metric.full_credit_at, MARGIN[assignment.metric.task]
        assert (report.metrics.value >= full + margin) if report.metrics.higher_is_better else \
            (report.metrics.value <= full - margin)
        assert report.training.stopped == "completed", "the reference must finish its epochs within the CPU budget"
        assert report.training.budget_used <= report.training.budget_seconds  # on the budget's clock, not wall time
        assert report.integrity == [], report.integrity


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_stub_earns_nothing_with_reasons(assignment_id: str,
                                         check_solutions: tuple[Path, subprocess.CompletedProcess]) -> None:
    report = read_report_json(check_solutions[0] / assignment_id / "stub" / "report.json")
    assert report.score.total == 0
    assert all(item.reason for item in report.score.items)


@pytest.fixture(scope="module")
def examples(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("examples")
    completed = subprocess.run([GRADER, "examples", "--out", str(out), "--data-dir", str(data_root), "--plain",
                                "--device", "cpu"], capture_output=True, text=True, timeout=2400)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return out


@pytest.mark.parametrize("submission", sorted(p.relative_to(examples_dir()) for p in examples_dir().glob("*/*")),
                         ids=str)
def test_examples_earn_what_their_names_promise(submission: Path, examples: Path) -> None:
    student = submission.name.split(".")[0]
    report = read_report_json(examples / submission.parent / student / "report.json")
    if student.endswith("_full_marks"):
        assert report.score.total == report.score.max_total, report.score.summary
    elif student.endswith("_weak"):
        assert 0 < report.score.total < report.score.max_total, report.score.summary
    else:
        assert student.endswith("_broken")
        assert report.failures and report.score.total < report.score.max_total / 2, report.score.summary
