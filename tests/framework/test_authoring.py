"""Authoring: `grader new` writes a working assignment into a course root, and `grader handout` a notebook handout
without solution code whose public-checks cell runs, and which, filled in, grades like the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from grader.authoring import TEMPLATES, notebook_of_module
from grader.config import load_assignment_file
from grader.paths import COURSE_ROOT_ENV
from grader.stubs import render_stub

REPOSITORY = Path(__file__).resolve().parents[2]
GRADER = str(Path(sys.executable).with_name("grader"))
ID, MODULE = "a9_demo", "demo"
SOLUTION_LINE = "nn.Conv2d(3, 16"  # a line of the template's reference that no handout may show


def run_grader(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != COURSE_ROOT_ENV}
    return subprocess.run([GRADER, "--course-root", str(root), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course root with one assignment that `grader new` wrote."""
    root = tmp_path / "course"
    (root / "assignments").mkdir(parents=True)
    done = run_grader(root, "new", ID, "--task", "classification", "--title", "A demo classifier")
    assert done.returncode == 0, done.stderr
    return root


def notebook_script(notebook: nbformat.NotebookNode) -> str:
    """The notebook's code cells as one script, as running them top to bottom in a kernel would."""
    return "\n\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code") + "\n"


def filled_in(handout: nbformat.NotebookNode, solution: Path) -> nbformat.NotebookNode:
    """The handout with each code cell replaced by the solution's cell at the same place: a student's answer."""
    answers = notebook_of_module(solution).cells
    for cell, answer in zip(handout.cells, answers, strict=False):
        if cell.cell_type == "code":
            cell.source = answer.source
    return handout


def test_new_writes_an_assignment_whose_stub_is_made_from_its_solution(course: Path) -> None:
    config = load_assignment_file(course / "assignments" / ID / "assignment.toml")
    assert (config.id, config.title, config.submission.module) == (ID, "A demo classifier", MODULE)
    for path in (f"assignments/{ID}/README.md", f"assignments/{ID}/check_accuracy.py",
                 f"assignments/{ID}/tests/test_public.py", f"tests/{ID}/test_{MODULE}.py", f"tests/{ID}/rules.toml"):
        assert (course / path).is_file(), path
    solution, stub = course / "solutions" / ID / f"{MODULE}.py", course / "assignments" / ID / f"{MODULE}.py"
    assert SOLUTION_LINE in solution.read_text() and SOLUTION_LINE not in stub.read_text()
    assert stub.read_text() == render_stub(solution)
    readme = (course / "assignments" / ID / "README.md").read_text()
    assert f"{config.training.max_parameters:,} parameters" in readme and "{{" not in readme
    assert run_grader(course, "stubs", "--check").returncode == 0
    assert ID in run_grader(course, "list").stdout


def test_new_states_every_hidden_rule_in_its_handout(course: Path) -> None:
    """As tests/framework/test_rules_stated.py asks of the course's assignments: each rule quoted from the
    handout, and tested by a public check that exists."""
    rules = tomllib.loads((course / "tests" / ID / "rules.toml").read_text())
    handout = " ".join((course / "assignments" / ID / "README.md").read_text().split())
    public = (course / "assignments" / ID / "tests" / "test_public.py").read_text()
    assert len(rules) == 13
    for check, rule in rules.items():
        assert rule["handout"] in handout, check
        assert f"def {rule['public']}(" in public if "public" in rule else rule["hidden_because"], check


REFUSED = [
    (["new", ID], "already exists"),
    (["new", "a8_auto", "--task", "reconstruction"], "no template for the task 'reconstruction'"),
    (["new", "A8"], "must start with a lowercase letter"),
    (["new", "a8_auto", "--module", "my-module"], "must start with a lowercase letter"),
    (["new", "a8_class"], "is a Python keyword"),
]


def test_new_refuses_in_one_sentence(course: Path) -> None:
    for args, sentence in REFUSED:
        done = run_grader(course, *args)
        assert done.returncode == 2 and sentence in done.stderr and "Traceback" not in done.stderr, args
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert sorted(p.name for p in (course / "assignments").iterdir()) == [ID]


def test_generated_public_checks_fail_on_the_stub_and_pass_on_the_solution(course: Path) -> None:
    folder = course / "assignments" / ID
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    on_stub = subprocess.run(pytest_args, cwd=folder, capture_output=True, text=True, timeout=120)
    assert on_stub.returncode == 1 and "NotImplementedError" in on_stub.stdout
    (folder / f"{MODULE}.py").write_text((course / "solutions" / ID / f"{MODULE}.py").read_text())
    on_solution = subprocess.run(pytest_args, cwd=folder, capture_output=True, text=True, timeout=120)
    assert on_solution.returncode == 0, on_solution.stdout


def test_the_classification_template_is_the_bundled_cnn_assignment() -> None:
    """The template's course-wide files are a3_cnn's, so a fix to one is not lost in the other."""
    template = TEMPLATES / "classification"
    assert (template / "assignments/__id__/check_accuracy.py.j2").read_text() == \
        (REPOSITORY / "assignments/a3_cnn/check_accuracy.py").read_text()
    hidden = (template / "tests/__id__/test___module__.py.j2").read_text().splitlines()[1:]
    assert hidden == (REPOSITORY / "tests/a3_cnn/test_cnn.py").read_text().splitlines()[1:]


def test_notebook_handout_has_no_solution_and_its_check_cell_runs(course: Path) -> None:
    assert run_grader(course, "handout", ID).returncode == 0
    assert run_grader(course, "handout", ID, "--check").returncode == 0  # the same solution, the same notebook
    folder = course / "assignments" / ID
    handout = nbformat.read(folder / f"{MODULE}.ipynb", as_version=4)
    text = json.dumps([cell.source for cell in handout.cells])
    assert SOLUTION_LINE not in text and "BEGIN SOLUTION" not in text and "raise NotImplementedError" in text
    assert all(not cell.get("outputs") for cell in handout.cells)

    (folder / "handout_run.py").write_text(notebook_script(handout))
    on_handout = subprocess.run([sys.executable, "handout_run.py"], cwd=folder, capture_output=True, text=True,
                                timeout=120)
    assert on_handout.returncode == 1 and "A public check failed" in on_handout.stderr
    assert "11 failed" in on_handout.stdout

    answer = filled_in(handout, course / "solutions" / ID / f"{MODULE}.py")
    (folder / "answer_run.py").write_text(notebook_script(answer))
    on_answer = subprocess.run([sys.executable, "answer_run.py"], cwd=folder, capture_output=True, text=True,
                               timeout=120)
    assert on_answer.returncode == 0 and "11 passed" in on_answer.stdout, on_answer.stdout + on_answer.stderr

    solution = course / "solutions" / ID / f"{MODULE}.py"
    solution.write_text(solution.read_text().replace("e.g. torch.optim.Adam", "e.g. torch.optim.SGD"))  # a prompt
    stale = run_grader(course, "handout", ID, "--check")
    assert stale.returncode == 2 and "out of date" in stale.stderr


def test_notebook_handout_from_a_solution_notebook(course: Path) -> None:
    """A solution written in Jupyter: its own cells, text cells kept, each code cell's solution removed."""
    solution = course / "solutions" / ID
    notebook = notebook_of_module(solution / f"{MODULE}.py")
    notebook.cells.insert(1, nbformat.v4.new_markdown_cell("Run the cells in order."))
    nbformat.write(notebook, solution / f"{MODULE}.ipynb")
    assert run_grader(course, "handout", ID).returncode == 0
    handout = nbformat.read(course / "assignments" / ID / f"{MODULE}.ipynb", as_version=4)
    assert handout.cells[1].source == "Run the cells in order."
    assert len(handout.cells) == len(notebook.cells) + 2  # and the public checks, under their heading
    assert SOLUTION_LINE not in json.dumps([cell.source for cell in handout.cells])


@pytest.mark.slow
@pytest.mark.real_data
def test_filled_in_notebook_grades_full_marks(course: Path, data_root: Path, tmp_path: Path) -> None:
    assert run_grader(course, "handout", ID).returncode == 0
    handout = nbformat.read(course / "assignments" / ID / f"{MODULE}.ipynb", as_version=4)
    answer = tmp_path / "dana.ipynb"
    nbformat.write(filled_in(handout, course / "solutions" / ID / f"{MODULE}.py"), answer)
    done = run_grader(course, "grade", ID, str(answer), "--out", str(tmp_path / "out"), "--data-dir",
                      str(data_root), "--device", "cpu", "--plain", timeout=900)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["score"]["total"] == 100, done.stdout
