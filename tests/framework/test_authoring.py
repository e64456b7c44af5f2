"""Authoring: `grader new` writes a working assignment into a course root, and `grader handout` a notebook handout
without solution code whose public-checks cell runs, and which, filled in, grades like the reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import get_args

import nbformat
import pytest

from grader.authoring import TEMPLATES, notebook_of_module, rendered, tasks
from grader.config import Assignment, load_assignment_file
from grader.models import TaskName
from grader.paths import COURSE_ROOT_ENV
from grader.stubs import render_stub

REPOSITORY = Path(__file__).resolve().parents[2]
GRADER = str(Path(sys.executable).with_name("grader"))
ID, MODULE = "a9_demo", "demo"
SOLUTION_LINE = "nn.Conv2d(3, 16"  # a line of the template's reference that no handout may show
# Per task: the id and module `grader new` writes, a line of its reference no handout may show, its hidden rules.
WRITTEN = {"classification": (ID, MODULE, SOLUTION_LINE, 13),
           "reconstruction": ("a8_auto", "auto", "nn.Conv2d(3, 32", 9)}


def run_grader(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != COURSE_ROOT_ENV}
    return subprocess.run([GRADER, "--course-root", str(root), *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def new_course(root: Path, task: str) -> Path:
    """A course root with one assignment of `task` that `grader new` wrote."""
    (root / "assignments").mkdir(parents=True)
    done = run_grader(root, "new", WRITTEN[task][0], "--task", task, "--title", f"A demo {task}")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def course(tmp_path: Path) -> Path:
    """A course root with one classification assignment that `grader new` wrote."""
    return new_course(tmp_path / "course", "classification")


@pytest.fixture(params=sorted(WRITTEN))
def task_course(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A course root with one assignment that `grader new` wrote, for each task it has a template for."""
    return request.param, new_course(tmp_path / "course", request.param)


def test_every_task_has_a_template() -> None:
    assert tasks() == sorted(WRITTEN) == sorted(get_args(TaskName))


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


def test_new_writes_an_assignment_whose_stub_is_made_from_its_solution(task_course: tuple[str, Path]) -> None:
    task, course = task_course
    assignment_id, module, solution_line, _ = WRITTEN[task]
    config = load_assignment_file(course / "assignments" / assignment_id / "assignment.toml")
    assert (config.id, config.title, config.submission.module) == (assignment_id, f"A demo {task}", module)
    assert config.metric is not None and config.metric.task == task
    for path in (f"assignments/{assignment_id}/README.md", f"assignments/{assignment_id}/check_accuracy.py",
                 f"assignments/{assignment_id}/tests/test_public.py", f"tests/{assignment_id}/test_{module}.py",
                 f"tests/{assignment_id}/rules.toml"):
        assert (course / path).is_file(), path
    solution = course / "solutions" / assignment_id / f"{module}.py"
    stub = course / "assignments" / assignment_id / f"{module}.py"
    assert solution_line in solution.read_text() and solution_line not in stub.read_text()
    assert stub.read_text() == render_stub(solution)
    readme = (course / "assignments" / assignment_id / "README.md").read_text()
    assert f"{config.training.max_parameters:,} parameters" in readme and "{{" not in readme
    assert run_grader(course, "stubs", "--check").returncode == 0
    assert assignment_id in run_grader(course, "list").stdout


def test_new_states_every_hidden_rule_in_its_handout(task_course: tuple[str, Path]) -> None:
    """As tests/framework/test_rules_stated.py asks of the course's assignments: each rule quoted from the
    handout, and tested by a public check that exists."""
    task, course = task_course
    assignment_id, module, _, count = WRITTEN[task]
    hidden = (course / "tests" / assignment_id / f"test_{module}.py").read_text()
    rules = tomllib.loads((course / "tests" / assignment_id / "rules.toml").read_text())
    handout = " ".join((course / "assignments" / assignment_id / "README.md").read_text().split())
    public = (course / "assignments" / assignment_id / "tests" / "test_public.py").read_text()
    assert len(rules) == count
    for check, rule in rules.items():
        assert f"    {check},\n" in hidden, check
        assert rule["handout"] in handout, check
        assert f"def {rule['public']}(" in public if "public" in rule else rule["hidden_because"], check


REFUSED = [
    (["new", ID], "already exists"),
    (["new", "a8_auto", "--task", "segmentation"], "no template for the task 'segmentation'"),
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


def test_generated_public_checks_fail_on_the_stub_and_pass_on_the_solution(task_course: tuple[str, Path]) -> None:
    task, course = task_course
    assignment_id, module, _, _ = WRITTEN[task]
    folder = course / "assignments" / assignment_id
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    on_stub = subprocess.run(pytest_args, cwd=folder, capture_output=True, text=True, timeout=120)
    assert on_stub.returncode == 1 and "NotImplementedError" in on_stub.stdout
    (folder / f"{module}.py").write_text((course / "solutions" / assignment_id / f"{module}.py").read_text())
    on_solution = subprocess.run(pytest_args, cwd=folder, capture_output=True, text=True, timeout=120)
    assert on_solution.returncode == 0, on_solution.stdout


def test_the_classification_template_is_the_bundled_cnn_assignment() -> None:
    """The template's course-wide files are a3_cnn's, so a fix to one is not lost in the other."""
    template = TEMPLATES / "classification"
    assert (template / "assignments/__id__/check_accuracy.py.j2").read_text() == \
        (REPOSITORY / "assignments/a3_cnn/check_accuracy.py").read_text()
    hidden = (template / "tests/__id__/test___module__.py.j2").read_text().splitlines()[1:]
    assert hidden == (REPOSITORY / "tests/a3_cnn/test_cnn.py").read_text().splitlines()[1:]


def test_the_reconstruction_template_is_the_bundled_autoencoder_assignment() -> None:
    """The template's files are a4_autoencoder's, with the id, module and numbers filled in from its config: a fix
    to one is not lost in the other. Only the budget differs (half a4's, so check-solutions takes a minute)."""
    a4 = load_assignment_file(REPOSITORY / "assignments/a4_autoencoder/assignment.toml")
    files = rendered("reconstruction", a4.id, a4.submission.module, a4.title)
    for name in ("assignments/a4_autoencoder/check_accuracy.py", "assignments/a4_autoencoder/tests/conftest.py",
                 "tests/a4_autoencoder/rules.toml"):
        assert files[name] == (REPOSITORY / name).read_text(), name
    for name in ("assignments/a4_autoencoder/tests/test_public.py", "tests/a4_autoencoder/test_autoencoder.py",
                 "solutions/a4_autoencoder/autoencoder.py"):
        assert files[name].splitlines()[1:] == (REPOSITORY / name).read_text().splitlines()[1:], name
    written = Assignment.model_validate(tomllib.loads(files["assignments/a4_autoencoder/assignment.toml"]))
    budget = {"cpu": a4.training.budget_seconds["cpu"] / 2, "cuda": a4.training.budget_seconds["cuda"] / 2}
    assert written.model_dump(exclude={"folder"}) == a4.model_copy(update={
        "training": a4.training.model_copy(update={"budget_seconds": budget})}).model_dump(exclude={"folder"})


def test_notebook_handout_has_no_solution_and_its_check_cell_runs(course: Path) -> None:
    assert "Wrote 1 notebook handout(s)." in run_grader(course, "handout", ID).stdout
    assert run_grader(course, "handout", ID, "--check").returncode == 0  # the same solution, the same notebook
    assert "Up to date: 1 notebook handout(s)." in run_grader(course, "handout", ID).stdout
    folder = course / "assignments" / ID
    handout = nbformat.read(folder / f"{MODULE}.ipynb", as_version=4)
    text = json.dumps([cell.source for cell in handout.cells])
    assert SOLUTION_LINE not in text and "BEGIN SOLUTION" not in text and "raise NotImplementedError" in text
    assert all(not cell.get("outputs") for cell in handout.cells)
    assert "check_accuracy.check(" in handout.cells[-2].source  # the heading cell says how to check the accuracy

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


def test_new_notebook_writes_a_solution_notebook_whose_stub_is_its_handout(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "assignments").mkdir(parents=True)
    assert run_grader(course, "new", ID, "--notebook").returncode == 0
    solution, handout = course / "solutions" / ID / f"{MODULE}.ipynb", course / "assignments" / ID / f"{MODULE}.ipynb"
    assert SOLUTION_LINE in solution.read_text() and SOLUTION_LINE not in handout.read_text()
    assert not (course / "solutions" / ID / f"{MODULE}.py").exists()
    assert not (course / "assignments" / ID / f"{MODULE}.py").exists()
    assert run_grader(course, "stubs", "--check").returncode == 0
    solution.write_text(solution.read_text().replace("e.g. torch.optim.Adam", "e.g. torch.optim.SGD"))  # a prompt
    stale = run_grader(course, "stubs", "--check")
    assert stale.returncode == 2 and str(handout) in stale.stderr
    assert run_grader(course, "stubs").returncode == 0 and "torch.optim.SGD" in handout.read_text()
    assert run_grader(course, "stubs", "--check").returncode == 0


def test_hidden_checks_run_as_plain_tests_on_a_solution_notebook(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "assignments").mkdir(parents=True)
    assert run_grader(course, "new", ID, "--notebook").returncode == 0
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "grader.pytest_plugin",
                           f"tests/{ID}"], cwd=course, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and f"{WRITTEN['classification'][3]} passed" in done.stdout, done.stdout


def test_stubs_refuse_in_one_sentence_without_a_solution(tmp_path: Path) -> None:
    course = tmp_path / "course"
    (course / "assignments").mkdir(parents=True)
    assert run_grader(course, "new", ID, "--notebook").returncode == 0
    (course / "assignments" / ID / f"{MODULE}.py").write_text("EPOCHS = 1\n")  # a stub left from a .py solution
    for sentence in (f"remove {MODULE}.py", f"solutions/{ID}/{MODULE}.py is missing"):
        done = run_grader(course, "stubs", "--check")
        assert done.returncode == 2 and sentence in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        (course / "solutions" / ID / f"{MODULE}.ipynb").unlink(missing_ok=True)  # now no solution at all


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


@pytest.mark.slow
@pytest.mark.real_data
def test_reconstruction_template_passes_check_solutions(tmp_path: Path, data_root: Path) -> None:
    """As written, the reconstruction skeleton's reference earns full marks and its stub none, in about a minute."""
    course = new_course(tmp_path / "course", "reconstruction")
    assignment_id = WRITTEN["reconstruction"][0]
    done = run_grader(course, "check-solutions", assignment_id, "--out", str(tmp_path / "out"), "--data-dir",
                      str(data_root), "--device", "cpu", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    totals = {kind: json.loads((tmp_path / "out" / assignment_id / kind / "report.json").read_text())["score"]["total"]
              for kind in ("solution", "stub")}
    assert totals == {"solution": 100, "stub": 0}, done.stdout


@pytest.mark.slow
@pytest.mark.real_data
def test_check_solutions_names_a_group_no_check_counts_towards(course: Path, data_root: Path, tmp_path: Path) -> None:
    """A group renamed in assignment.toml but not in the checks' marks: the reference loses its points, and
    check-solutions says why instead of only "95 instead of 100"."""
    config = course / "assignments" / ID / "assignment.toml"
    config.write_text(config.read_text().replace('name = "output"', 'name = "outputs"', 1))
    done = run_grader(course, "check-solutions", ID, "--out", str(tmp_path / "out"), "--data-dir", str(data_root),
                      "--device", "cpu", timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert "solution: 95 instead of 100 (no hidden check counts towards the group 'outputs'" in done.stderr

