"""Where the project's folders are, relative to this package."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = PROJECT_ROOT / "grader"
ASSIGNMENTS_DIR = PROJECT_ROOT / "assignments"
SOLUTIONS_DIR = PROJECT_ROOT / "solutions"
TESTS_DIR = PROJECT_ROOT / "tests"
EXAMPLES_DIR = PROJECT_ROOT / "examples" / "submissions"
