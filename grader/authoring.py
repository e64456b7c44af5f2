"""Authoring: `grader new` writes an assignment's skeleton from a task's templates, and `grader handout` writes a
notebook handout from a solution, with Otter's solution stripping (the same as the stubs')."""

from __future__ import annotations

import ast
import keyword
import re
import tomllib
from pathlib import Path

import nbformat
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from otter.assign.solutions import replace_solutions
from pydantic import ValidationError

from grader.config import Assignment, load_assignment
from grader.errors import GraderError
from grader.notebook import PUBLIC_CHECKS_CELL
from grader.paths import PACKAGE_DIR, course_root
from grader.stubs import render_stub, solution_notebook

TEMPLATES = PACKAGE_DIR / "templates" / "new"  # one folder per task, laid out as a course root
ASSIGNMENT_TOML = "assignments/__id__/assignment.toml.j2"  # rendered first: the other templates read its numbers
NAME = re.compile(r"[a-z][a-z0-9_]*")
CHECK_CELL = PUBLIC_CHECKS_CELL + """
import sys

import __main__
import pytest

sys.modules["{module}"] = __main__
assert pytest.main(["-q", "-p", "no:cacheprovider", "tests"]) == 0, "A public check failed: its message is above."
"""
CHECK_TEXT = """## Check your work

The cell below runs the public checks of `tests/` on your definitions; `README.md` says what is graded."""
ACCURACY_TEXT = """ To see the
score the grader would measure, run `import check_accuracy, __main__; check_accuracy.check("path/to/cifar10",
__main__)` in a cell of your own (`README.md` says how its numbers compare with the grader's)."""


def tasks() -> list[str]:
    """The tasks `grader new` has templates for."""
    return sorted(folder.name for folder in TEMPLATES.iterdir() if (folder / ASSIGNMENT_TOML).is_file())


def new_assignment(assignment_id: str, task: str, module: str | None = None, title: str | None = None,
                   notebook: bool = False) -> list[Path]:
    """Write the skeleton of a new assignment of `task` into the course root; return the files written. With
    `notebook`, the reference is a solution notebook and the stub its notebook handout."""
    module = module or default_module(assignment_id)
    _require_name("assignment id", assignment_id)
    _require_name("module name", module)
    if keyword.iskeyword(module):
        raise GraderError(f"The module name {module!r} is a Python keyword, which no module can be named.")
    if task not in tasks():
        raise GraderError(f"grader new has no template for the task {task!r} yet; it has: {', '.join(tasks())}.")
    root = course_root()
    taken = [p for p in (root / d / assignment_id for d in ("assignments", "solutions", "tests")) if p.exists()]
    if taken:
        raise GraderError(f"{taken[0]} already exists: choose another id, or remove it first.")
    files = {root / name: text for name, text in rendered(task, assignment_id, module, title or assignment_id).items()}
    for target, text in files.items():  # all rendered first, so a template error leaves nothing half written
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    solution = root / "solutions" / assignment_id / f"{module}.py"
    if notebook:
        return [*(path for path in files if path != solution), *_as_solution_notebook(solution, assignment_id)]
    stub = root / "assignments" / assignment_id / f"{module}.py"
    stub.write_text(render_stub(solution), encoding="utf-8")
    return [*files, stub]


def _as_solution_notebook(solution: Path, assignment_id: str) -> list[Path]:
    """Turn a solution module into the solution notebook beside it, write its handout; return both notebooks."""
    notebook = notebook_of_module(solution)
    _number_cells(notebook)
    target = solution.with_suffix(".ipynb")
    target.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
    solution.unlink()
    handout, _ = write_notebook_handout(load_assignment(assignment_id))
    return [target, handout]


def rendered(task: str, assignment_id: str, module: str, title: str) -> dict[str, str]:
    """A task's templates rendered, by their paths in the course root; assignment.toml first, validated, and
    handed to the others as `a`, so they take its numbers instead of repeating them."""
    folder = TEMPLATES / task
    env = Environment(loader=FileSystemLoader(folder), undefined=StrictUndefined, keep_trailing_newline=True,
                      autoescape=False)  # noqa: S701 - renders Python, TOML and Markdown files, never HTML
    names = {"id": assignment_id, "module": module, "title": title}
    config = env.get_template(ASSIGNMENT_TOML).render(names)
    context = {**names, "a": _validated(config, assignment_id)}
    templates = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.j2"))
    return {name.removesuffix(".j2").replace("__id__", assignment_id).replace("__module__", module):
            config if name == ASSIGNMENT_TOML else env.get_template(name).render(context) for name in templates}


def default_module(assignment_id: str) -> str:
    """The module name an id suggests: what follows its first underscore (a3_cnn: cnn), else the id itself."""
    return assignment_id.partition("_")[2] or assignment_id


def _require_name(what: str, name: str) -> None:
    """One sentence unless `name` can be a folder and a module name alike."""
    if not NAME.fullmatch(name):
        raise GraderError(f"The {what} {name!r} must start with a lowercase letter and hold only lowercase letters, "
                          "digits and underscores.")


def _validated(config: str, assignment_id: str) -> Assignment:
    """The rendered assignment.toml as the grader reads it (a template that renders an invalid one is a bug)."""
    try:
        return Assignment.model_validate(tomllib.loads(config))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise GraderError(f"The template renders an invalid assignment.toml for {assignment_id}: {exc}.") from None


def notebook_handout(assignment: Assignment) -> nbformat.NotebookNode:
    """The handout notebook: the solution notebook (or the solution module split into cells) without its
    solutions, and a last cell that runs the public checks."""
    source = solution_notebook(assignment)
    if source:
        notebook: nbformat.NotebookNode = nbformat.read(source, as_version=4)
    else:
        notebook = notebook_of_module(assignment.solution_dir / f"{assignment.submission.module}.py")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(replace_solutions(cell.source.splitlines(), "python")).rstrip("\n")
            cell.outputs, cell.execution_count = [], None
    accuracy = ACCURACY_TEXT if (assignment.folder / "check_accuracy.py").is_file() else ""
    notebook.cells += [nbformat.v4.new_markdown_cell(CHECK_TEXT + accuracy),
                       nbformat.v4.new_code_cell(CHECK_CELL.format(module=assignment.submission.module).rstrip())]
    _number_cells(notebook)
    return notebook


def _number_cells(notebook: nbformat.NotebookNode) -> None:
    """Cell ids by position: nbformat's are random, and the same solution must give the same notebook."""
    for number, cell in enumerate(notebook.cells, start=1):
        cell.id = f"cell-{number}"


def notebook_of_module(path: Path) -> nbformat.NotebookNode:
    """A module as a notebook: its docstring as a text cell, then one code cell per top-level definition (with
    the comments above it) and one for the statements between definitions."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    body = ast.parse(text).body
    cells: list[nbformat.NotebookNode] = []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        cells.append(nbformat.v4.new_markdown_cell(str(body[0].value.value).strip()))
        lines[: body[0].end_lineno] = [""] * (body[0].end_lineno or 0)
    starts = [_start(node, lines) for node in body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef
                                                                  | ast.ClassDef)]
    for begin, end in zip([0, *starts], [*starts, len(lines)], strict=True):
        code = "\n".join(lines[begin:end]).strip("\n")
        if code:
            cells.append(nbformat.v4.new_code_cell(code))
    notebook: nbformat.NotebookNode = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    return notebook


def _start(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, lines: list[str]) -> int:
    """The 0-based line where a definition's cell begins: its first decorator, or the comments right above it."""
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start


def write_notebook_handout(assignment: Assignment, check: bool = False) -> tuple[Path, bool]:
    """Write (or with `check` only compare) `assignments/<id>/<module>.ipynb`; return it and whether it was stale."""
    target = assignment.folder / f"{assignment.submission.module}.ipynb"
    text = nbformat.writes(notebook_handout(assignment)) + "\n"
    stale = not target.is_file() or target.read_text(encoding="utf-8") != text
    if stale and not check:
        target.write_text(text, encoding="utf-8")
    return target, stale
