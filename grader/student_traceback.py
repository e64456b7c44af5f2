"""Import failures in the student's own terms: their traceback without the grader's frames, and for a module
made from a notebook, the cell and line each frame came from.

The import stage reports a Python traceback as text (`Failure.details`); this runs on the host, after it.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from grader.config import Assignment
from grader.models import Failure, FailureKind
from grader.notebook import NotebookModule

FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')
# Library and standard library frames keep their path from the package or module on, without the install's folders.
LIBRARY = re.compile(r'"[^"]*/(?:(?:site|dist)-packages|lib/python3[.\d]*)/')
HEADER = "Traceback (most recent call last):"
WHY = "top-level code runs at grading time, on the grader's machine, without your data or files"


def explain_import_failure(failure: Failure, assignment: Assignment, notebook: NotebookModule | None) -> Failure:
    """An import-stage failure with the student's traceback, and for a notebook a message naming cell and line."""
    module_file = f"{assignment.submission.module}.py"
    if failure.stage != "import" or not failure.details:
        return failure
    found = _student_frames(failure.details, module_file, notebook)
    if found is None:
        return failure
    traceback, first_line = found
    update = {"student_traceback": traceback}
    where = notebook.where(first_line) if notebook is not None else None
    if where is not None:
        update["message"] = _notebook_message(failure, where, traceback)
    return failure.model_copy(update=update)


def _student_frames(details: str, module_file: str, notebook: NotebookModule | None) -> tuple[str, int] | None:
    """The traceback from the first frame in the student's module on, and that frame's module line."""
    lines = details.rstrip().splitlines()
    starts = [(i, m) for i, line in enumerate(lines)
              if (m := FRAME.match(line)) and PurePosixPath(m["file"]).name == module_file]
    if not starts:
        return None
    start, first = starts[0]
    folder = PurePosixPath(first["file"]).parent  # where the grader put the submission
    kept = [HEADER] + [_student_frame(line, folder, module_file, notebook) for line in lines[start:]]
    return "\n".join(kept), int(first["line"])


def _student_frame(line: str, folder: PurePosixPath, module_file: str, notebook: NotebookModule | None) -> str:
    """One traceback line as the student would recognize it: their cell and line, their file, or a library path."""
    match = FRAME.match(line)
    if match is None:
        return line
    path = PurePosixPath(match["file"])
    if path.is_relative_to(folder) and path != folder / module_file:
        return f'  File "{path.relative_to(folder)}", line {match["line"]}{match["rest"]}'
    if path.name != module_file:
        return LIBRARY.sub('"', line)
    where = notebook.where(int(match["line"])) if notebook is not None else None
    return f"  {where}{match['rest']}" if where else f'  File "{module_file}", line {match["line"]}{match["rest"]}'


def _notebook_message(failure: Failure, where: str, traceback: str) -> str:
    error = traceback.splitlines()[-1]
    if failure.kind == FailureKind.SYNTAX_ERROR:
        return f"{where} has a syntax error: {error.removeprefix('SyntaxError: ')}."
    return f"{where} raised {error[:200]} when the grader imported your notebook: {WHY}."
