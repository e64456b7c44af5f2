"""A notebook as students write it, graded end to end on the synthetic data: it scores like the same code as a .py,
its report lists what was left out, and a notebook whose definitions fail names the cell and line."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.config import load_assignment
from grader.models import FailureKind
from grader.pipeline import GradeOptions, grade
from tests.framework.course_notebook import cell_number, course_notebook
from tests.framework.report_views import html_view, md_view, repeated_lines

pytestmark = pytest.mark.slow


@pytest.fixture
def options(synthetic_cifar: Path, isolated_cache: Path) -> GradeOptions:
    return GradeOptions(data_root=synthetic_cifar, student_id="dana")


def assert_readable(out: Path) -> None:
    """Every view: no line twice, and Markdown and HTML with the same sections and tables."""
    for stem in ("report", "report-ta"):
        md, html = md_view(out / f"{stem}.md"), html_view(out / f"{stem}.html")
        assert repeated_lines(md[0]) == [] and repeated_lines(html[0]) == []
        assert md[1:] == html[1:]


def test_a_course_notebook_grades_like_the_same_code_as_a_py(options: GradeOptions, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    notebook = course_notebook(assignment.solution_dir / "ffn.py")
    nbformat.write(notebook, tmp_path / "dana.ipynb")
    as_py = grade(assignment, assignment.solution_dir / "ffn.py", tmp_path / "py", options)
    as_notebook = grade(assignment, tmp_path / "dana.ipynb", tmp_path / "notebook", options)
    assert as_notebook.failures == [] and as_py.failures == []
    assert as_notebook.score.total == as_py.score.total
    assert as_notebook.metrics.value == as_py.metrics.value
    assert [e.loss for e in as_notebook.training.epochs] == [e.loss for e in as_py.training.epochs]
    training_cell = cell_number(notebook, "model =")
    for view in ("report.md", "report.html", "report-ta.md", "report-ta.html"):
        text = (tmp_path / "notebook" / view).read_text()
        assert f"cell {training_cell} (assignments to model, optimizer; a training loop)" in text
    assert_readable(tmp_path / "notebook")


def test_a_notebook_whose_definitions_fail_names_the_cell_and_line(options: GradeOptions, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    notebook = course_notebook(assignment.solution_dir / "ffn.py")
    broken = cell_number(notebook, "def build_model")
    notebook.cells[broken - 1].source = "class Block(nn.Modul):\n    pass\n\n" + notebook.cells[broken - 1].source
    nbformat.write(notebook, tmp_path / "dana.ipynb")
    report = grade(assignment, tmp_path / "dana.ipynb", tmp_path / "out", options)
    [failure] = report.failures
    assert failure.kind == FailureKind.IMPORT_ERROR
    assert failure.message.startswith(f"Cell {broken}, line 1 of dana.ipynb raised AttributeError: module "
                                      "'torch.nn' has no attribute 'Modul'")
    assert "top-level code runs at grading time" in failure.message
    assert report.score.total == 0
    student = (tmp_path / "out" / "report.md").read_text()
    assert f"  Cell {broken}, line 1 of dana.ipynb, in <module>\n    class Block(nn.Modul):" in student
    assert "grader/harness" not in student and "importlib" not in student
    assert_readable(tmp_path / "out")
