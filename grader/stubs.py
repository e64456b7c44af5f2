"""Student stubs are generated from the reference solutions with Otter's solution stripping.

A solution marks its answer with `# BEGIN SOLUTION NO PROMPT` / `# END SOLUTION` (or a trailing
`# SOLUTION`), and the stub's placeholder between `\"\"\" # BEGIN PROMPT` and `\"\"\" # END PROMPT`,
which is an inert string in the solution and live code in the stub.
"""

from __future__ import annotations

from pathlib import Path

from otter.assign.solutions import replace_solutions

from grader.config import assignment_ids, load_assignment


def render_stub(solution: Path) -> str:
    """The stub text for one solution file."""
    # Otter expects lines without their newlines: a `# SOLUTION` line would otherwise lose its own.
    lines = solution.read_text(encoding="utf-8").splitlines()
    return "\n".join(replace_solutions(lines, "python")) + "\n"


def stub_pairs() -> list[tuple[Path, Path]]:
    """(solution file, stub file) for every required file of every assignment."""
    pairs = []
    for assignment_id in assignment_ids():
        assignment = load_assignment(assignment_id)
        pairs += [(assignment.solution_dir / name, assignment.folder / name) for name in assignment.submission.files]
    return pairs


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
