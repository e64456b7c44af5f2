"""A course root outside this repository: chosen by --course-root or $GRADER_COURSE_ROOT, the same for every command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.course import load_course
from grader.errors import GraderError
from grader.paths import COURSE_ROOT_ENV
from grader.reports import read_report_json

REPOSITORY = Path(__file__).resolve().parents[2]
GRADER = str(Path(sys.executable).with_name("grader"))
TERM_TITLE = "Datasets, the spring term's copy"


# An assignment written by hand: no data, no training, one hidden check.
HELLO = {
    "assignments/h1_hello/assignment.toml": """
id = "h1_hello"
title = "Hello, course root"
version = "1.0.0"
seed = 0

[submission]
files = ["hello.py"]
module = "hello"
max_files = 5
max_total_mb = 1
max_file_mb = 1

[submission.api]
greet = { kind = "function", params = ["name"] }

[[checks]]
name = "greet"
title = "greet greets by name"
points = 10

[limits]
threads = 1
import_seconds = 30
check_seconds = 30
checks_total_seconds = 120
eval_seconds = 30
eval_cpu_seconds = 30
memory_mb = 2048
grader_memory_mb = 1024
processes = 64
file_size_mb = 16
output_kb = 64

[similarity]
threshold = 0.4
kgram = 25
guarantee = 25
boilerplate_share = 0.25
boilerplate_min_submissions = 8
""",
    "assignments/h1_hello/hello.py": "def greet(name):\n    raise NotImplementedError\n",
    "solutions/h1_hello/hello.py": "def greet(name):\n    return f'Hello, {name}!'\n",
    "tests/h1_hello/test_hello.py": """import pytest


def expected(name):
    return f"Hello, {name}!"


@pytest.mark.group("greet")
def test_greets_by_name(submission):
    assert submission.greet("Ada") == expected("Ada")
""",
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text.lstrip())


def make_course(root: Path, assignment_ids: tuple[str, ...] = ("a1_dataset",)) -> Path:
    """A course root holding copies of this repository's `assignment_ids` (public files, solution, hidden checks)."""
    for assignment_id in assignment_ids:
        for part in ("assignments", "solutions", "tests"):
            shutil.copytree(REPOSITORY / part / assignment_id, root / part / assignment_id,
                            ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    root.chmod(0o755)  # pytest makes its temp dirs private; the sandbox's unprivileged user reads the checks
    return root


def retitle(root: Path, assignment_id: str, title: str) -> None:
    """Give the course's copy of an assignment another title, so output shows which course was read."""
    config = root / "assignments" / assignment_id / "assignment.toml"
    lines = config.read_text().splitlines()
    config.write_text("\n".join(f'title = "{title}"' if line.startswith("title = ") else line for line in lines) + "\n")


def grader(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    """The grader command, run from `cwd`, with no course root in the environment unless `env` gives one."""
    base = {key: value for key, value in os.environ.items() if key != COURSE_ROOT_ENV} | {"COLUMNS": "400"}
    return subprocess.run([GRADER, *args], cwd=cwd, env=base | (env or {}), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def course(tmp_path: Path) -> Path:
    course = make_course(tmp_path / "course")
    retitle(course, "a1_dataset", TERM_TITLE)
    return course


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working folder that is neither the checkout nor a course root."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def listed(completed: subprocess.CompletedProcess) -> str:
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_the_option_selects_the_course_root(course: Path, elsewhere: Path) -> None:
    out = listed(grader("--course-root", str(course), "list", cwd=elsewhere))
    assert TERM_TITLE in out and "a2_ffn" not in out


def test_the_environment_variable_selects_the_course_root(course: Path, elsewhere: Path) -> None:
    out = listed(grader("list", cwd=elsewhere, env={COURSE_ROOT_ENV: str(course)}))
    assert TERM_TITLE in out and "a2_ffn" not in out


def test_the_option_wins_over_the_environment_variable(course: Path, elsewhere: Path) -> None:
    out = listed(grader("--course-root", str(course), "list", cwd=elsewhere, env={COURSE_ROOT_ENV: str(REPOSITORY)}))
    assert TERM_TITLE in out and "a2_ffn" not in out


def test_the_current_folder_is_the_default_course_root(course: Path) -> None:
    out = listed(grader("list", cwd=course))
    assert TERM_TITLE in out and "a2_ffn" not in out


def test_this_checkout_is_the_course_root_elsewhere(elsewhere: Path) -> None:
    """Installed editable from this checkout, the grader reads the bundled course from any other folder."""
    out = listed(grader("list", cwd=elsewhere))
    assert {"a1_dataset", "a2_ffn", "a3_cnn"} <= set(out.split())


def test_a_folder_without_assignments_is_refused_in_one_sentence(tmp_path: Path, elsewhere: Path) -> None:
    completed = grader("--course-root", str(tmp_path / "nothing"), "list", cwd=elsewhere)
    assert completed.returncode != 0
    message = completed.stderr.strip()
    assert message == f"error: {tmp_path / 'nothing'} is not a course root: it has no assignments/ folder."


def break_config(course: Path, assignment_id: str) -> Path:
    """A second assignment whose assignment.toml has a wrong type under [limits]."""
    shutil.copytree(course / "assignments" / "a1_dataset", course / "assignments" / assignment_id)
    config = course / "assignments" / assignment_id / "assignment.toml"
    text = config.read_text().replace('id = "a1_dataset"', f'id = "{assignment_id}"')
    config.write_text(text.replace("threads = ", 'threads = "two" #', 1))
    return config


def test_an_invalid_assignment_toml_is_one_sentence_naming_file_and_key(course: Path, elsewhere: Path) -> None:
    config = break_config(course, "b1_broken")
    completed = grader("--course-root", str(course), "grade", "b1_broken", str(elsewhere), cwd=elsewhere)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert lines[0].startswith(f"error: {config}: limits.threads: ") and lines[0].endswith("."), lines[0]


def test_list_shows_an_invalid_assignment_with_its_error(course: Path, elsewhere: Path) -> None:
    config = break_config(course, "b1_broken")
    out = listed(grader("--course-root", str(course), "list", cwd=elsewhere))
    assert TERM_TITLE in out, "the valid assignment is still listed"
    broken = next(line for line in out.splitlines() if "b1_broken" in line)
    assert f"{config}: limits.threads:" in broken


def test_check_solutions_refuses_an_unknown_id_before_grading(course: Path, elsewhere: Path) -> None:
    completed = grader("--course-root", str(course), "check-solutions", "a2_ffn", "--out", str(elsewhere / "out"),
                       cwd=elsewhere)
    assert completed.returncode == 2
    assert f"Unknown assignment 'a2_ffn' in the course root {course}; known assignments: a1_dataset." in \
        completed.stderr.replace("\n", "")
    assert not (elsewhere / "out" / "a1_dataset").exists()


@pytest.mark.slow
def test_a_symlinked_course_root_grades_and_checks_named_solutions(course: Path, elsewhere: Path, tmp_path: Path,
                                                                   synthetic_cifar: Path) -> None:
    """Through a link to the course, the sandbox sees the checks (resolved), and check-solutions grades only a1."""
    make_course(course, ("a2_ffn",))
    link = tmp_path / "course-link"
    link.symlink_to(course, target_is_directory=True)
    out = elsewhere / "out"
    completed = grader("--course-root", str(link), "check-solutions", "a1_dataset", "--out", str(out),
                       "--data-dir", str(synthetic_cifar), "--device", "cpu", "--plain", cwd=elsewhere, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["a1_dataset"], "a2_ffn was named by nobody"
    report = read_report_json(out / "a1_dataset" / "solution" / "report.json")
    assert report.score.total == report.score.max_total == 100
    assert report.failures == [], "the canary found the course root's checks intact"
    assert read_report_json(out / "a1_dataset" / "stub" / "report.json").score.total == 0


def test_the_service_offers_the_course_roots_assignments(course: Path, elsewhere: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`grader course init` offers the course root's assignments; a course.toml naming another is refused."""
    service = tmp_path / "service"
    listed(grader("--course-root", str(course), "course", "init", "--course-dir", str(service), cwd=elsewhere))
    config = (service / "course.toml").read_text()
    assert 'id = "a1_dataset"' in config and "a2_ffn" not in config
    monkeypatch.setenv(COURSE_ROOT_ENV, str(course))
    assert [offered.id for offered in load_course(service).assignments] == ["a1_dataset"]
    (service / "course.toml").write_text(config.replace('id = "a1_dataset"', 'id = "a2_ffn"'))
    with pytest.raises(GraderError, match=re.escape(
            f"unknown assignment 'a2_ffn' in the course root {course}; known assignments: a1_dataset.")):
        load_course(service)


# Replaces the hidden check's helper, so the check would pass: the canary must see it, as the course root's check.
FORGER = """import sys

for module in list(sys.modules.values()):
    if (getattr(module, "__file__", None) or "").endswith("test_hello.py"):
        module.expected = lambda name: "forged"


def greet(name):
    return "forged"
"""


@pytest.mark.slow
def test_the_canary_watches_the_course_roots_checks(tmp_path: Path, elsewhere: Path) -> None:
    course = tmp_path / "course"
    write_files(course, HELLO)
    course.chmod(0o755)
    (elsewhere / "hello.py").write_text(FORGER)
    for name, submission in (("solution", course / "solutions" / "h1_hello"), ("forger", elsewhere / "hello.py")):
        completed = grader("--course-root", str(course), "grade", "h1_hello", str(submission), "--out",
                           str(elsewhere / name), "--quiet", cwd=elsewhere, timeout=300)
        assert completed.returncode == 0, completed.stderr
    assert read_report_json(elsewhere / "solution" / "report.json").score.total == 10, "the control"
    forged = read_report_json(elsewhere / "forger" / "report.json")
    assert [f.kind for f in forged.failures] == ["tampering"] and forged.score.total == 0
    assert "test_hello.expected" in forged.failures[0].details, forged.failures[0].details
