"""Where the engine's own files are, and the course root: the folder holding a course's `assignments/<id>`,
`solutions/<id>` and `tests/<id>` (and `examples/submissions/<id>`)."""

from __future__ import annotations

import os
from pathlib import Path

from grader.errors import GraderError

PACKAGE_DIR = Path(__file__).resolve().parent
COURSE_ROOT_ENV = "GRADER_COURSE_ROOT"  # `grader --course-root` sets it, so every child process sees the same root


def course_root() -> Path:
    """$GRADER_COURSE_ROOT, else the current directory when it has `assignments/`, else the checkout the engine is
    installed editable from; resolved, so a symlinked course is the same folder to the host and the sandbox."""
    given = os.environ.get(COURSE_ROOT_ENV)
    if given:
        return require_course_root(Path(given))
    for candidate in (Path.cwd(), PACKAGE_DIR.parent):
        if (candidate / "assignments").is_dir():
            return candidate.resolve()
    raise GraderError(f"No course root: give --course-root or set {COURSE_ROOT_ENV} to a folder with assignments/, "
                      "or run grader from such a folder.")


def require_course_root(path: Path) -> Path:
    """`path` resolved, if it is a course root (a folder with `assignments/`); else one sentence saying why not."""
    root = path.expanduser().resolve()
    if not (root / "assignments").is_dir():
        raise GraderError(f"{path} is not a course root: it has no assignments/ folder.")
    return root


def assignments_dir() -> Path:
    """The course's public assignment folders: configs, stubs and handouts."""
    return course_root() / "assignments"


def solutions_dir() -> Path:
    """The course's reference solutions, which no sandbox ever sees."""
    return course_root() / "solutions"


def checks_root() -> Path:
    """The course's hidden checks, one `tests/<id>/` folder per assignment."""
    return course_root() / "tests"


def examples_dir() -> Path:
    """The course's example submissions, one `examples/submissions/<id>/` folder per assignment."""
    return course_root() / "examples" / "submissions"
