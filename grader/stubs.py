"""Student stubs are generated from the reference solutions with Otter's solution stripping.

A solution marks its answer with `# BEGIN SOLUTION NO PROMPT` / `# END SOLUTION` (or a trailing
`# SOLUTION`), and the stub's placeholder between `\"\"\" # BEGIN PROMPT` and `\"\"\" # END PROMPT`,
which is an inert string in the solution and live code in the stub.
"""

from __future__ import annotations

from pathlib import Path

from otter.assign.solutions import replace_solutions

from grader.config import Assignment, assignment_ids, load_assignment
from grader.errors import GraderError


def render_stub(solution: Path) -> str:
    """The stub text for one solution file."""
    # Otter expects lines without their newlines: a `# SOLUTION` line would otherwise lose its own.
    lines = solution.read_text(encoding="utf-8").splitlines()
    return "\n".join(replace_solutions(lines, "python")) + "\n"


def solution_notebook(assignment: Assignment) -> Path | None:
    """`solutions/<id>/<module>.ipynb` when the reference is written as a notebook (its stub is then the notebook
    handout that `grader handout` writes)."""
    path = assignment.solution_dir / f"{assignment.submission.module}.ipynb"
    return path if path.is_file() else None


def stub_pairs() -> list[tuple[Path, Path]]:
    """(solution file, stub file) for every required file of every assignment whose reference is a module."""
    pairs = []
    for assignment_id in assignment_ids():
        assignment = load_assignment(assignment_id)
        pairs += [pair for name in assignment.submission.files if (pair := _stub_pair(assignment, name))]
    return pairs


def _stub_pair(assignment: Assignment, name: str) -> tuple[Path, Path] | None:
    """The solution and stub of one required file; None for the module of a solution notebook."""
    solution, stub, notebook = assignment.solution_dir / name, assignment.folder / name, solution_notebook(assignment)
    if solution.is_file():
        return solution, stub
    if notebook is None or name != f"{assignment.submission.module}.py":
        raise GraderError(f"{solution} is missing: write {assignment.id}'s reference solution there "
                          f"(or as the notebook {assignment.submission.module}.ipynb).")
    if stub.is_file():
        raise GraderError(f"{stub} is left from a solution module, but {assignment.id}'s reference is the notebook "
                          f"{notebook}, whose stub is the notebook handout (`grader handout`): remove {stub.name}.")
    return None


def stale_stubs(write: bool = False) -> list[Path]:
    """Stubs that differ from what their solution renders to; with `write`, regenerate them."""
    stale = []
    for solution, stub in stub_pairs():
        text = render_stub(solution)
        if not stub.is_file() or stub.read_text(encoding="utf-8") != text:
            stale.append(stub)
            if write:
                stub.write_text(text, encoding="utf-8")
    return stale
