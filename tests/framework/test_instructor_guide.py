"""Every example of the instructor's guide runs: its assignment.toml snippets validate in an assignment that
`grader new` wrote, its commands run in a fresh course root, and the check library's reference lists every check
with the group and functions the code gives it."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from grader import classifier_checks, reconstruction_checks
from grader.authoring import new_assignment
from grader.config import Assignment
from grader.paths import COURSE_ROOT_ENV

DOCS = Path(__file__).resolve().parents[2] / "docs" / "instructors"
BIN = str(Path(sys.executable).parent)


def blocks(page: str, language: str) -> list[str]:
    """The fenced code blocks of one language in a page of the guide."""
    return re.findall(rf"^```{language}\n(.*?)^```", (DOCS / page).read_text(), flags=re.MULTILINE | re.DOTALL)


def merged(base: dict, snippet: dict) -> dict:
    """`base` with the snippet's tables merged in and its other values replacing base's."""
    out = dict(base)
    for key, value in snippet.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def holds(model: object, snippet: object) -> bool:
    """Whether every value of the snippet is in the validated config as written."""
    if isinstance(snippet, dict):
        return isinstance(model, dict) and all(key in model and holds(model[key], v) for key, v in snippet.items())
    return model == snippet


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    (tmp_path / "assignments").mkdir()
    monkeypatch.setenv(COURSE_ROOT_ENV, str(tmp_path))
    new_assignment("a4_demo", "classification", "cnn")
    return tomllib.loads((tmp_path / "assignments/a4_demo/assignment.toml").read_text())


@pytest.mark.parametrize("snippet", blocks("index.md", "toml"))
def test_guide_toml_snippet_is_a_valid_part_of_an_assignment(generated: dict, snippet: str) -> None:
    values = tomllib.loads(snippet)
    config = Assignment.model_validate(merged(generated, values))
    assert holds(config.model_dump(mode="json"), values)


def test_every_toml_example_of_the_guide_is_found() -> None:
    assert len(blocks("index.md", "toml")) == (DOCS / "index.md").read_text().count("```toml") > 0


def test_check_library_reference_lists_every_check_with_its_group_and_calls() -> None:
    rows = re.findall(r"^\| `(test_\w+)` \| `(\w+)` \| (.+?) \|", (DOCS / "check-library.md").read_text(),
                      flags=re.MULTILINE)
    documented = {name: (group, re.findall(r"`(\w+)`", calls)) for name, group, calls in rows}
    library = {}
    for module in (classifier_checks, reconstruction_checks):
        for name, check in vars(module).items():
            if name.startswith("test_") and callable(check) and check.__module__ == module.__name__:
                marks = {mark.name: mark.args for mark in check.pytestmark}
                library[name] = (marks["group"][0], list(marks["calls"]))
    assert documented == library


def test_check_library_example_is_what_grader_new_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = blocks("check-library.md", "python")
    names = re.findall(r"^    (test_\w+),$", example, flags=re.MULTILINE)
    exec(compile(example.replace("    ...\n", ""), "check-library.md", "exec"), {})  # noqa: S102 - the guide's own
    (tmp_path / "assignments").mkdir()
    monkeypatch.setenv(COURSE_ROOT_ENV, str(tmp_path))
    new_assignment("a4_demo", "classification", "cnn")
    written = (tmp_path / "tests/a4_demo/test_cnn.py").read_text()
    assert names and all(f"    {name},\n" in written for name in names)


ONE_CONVOLUTION = """from torch import nn


def build_model():
    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(1800, 2))
"""


def test_own_check_example_passes_the_reference_and_fails_one_convolution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (example,) = [block for block in blocks("checks.md", "python") if "@verdict(test_model_has_two" in block]
    (rule,) = blocks("checks.md", "toml")
    (commands,) = blocks("checks.md", "bash")
    (tmp_path / "assignments").mkdir()
    monkeypatch.setenv(COURSE_ROOT_ENV, str(tmp_path))
    new_assignment("a4_demo", "classification", "cnn")
    (tmp_path / "tests/a4_demo/test_own.py").write_text(example)
    assert "test_model_has_two_convolutions" in tomllib.loads(rule)
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice/cnn.py").write_text(ONE_CONVOLUTION)
    runs = []
    for line in commands.splitlines():
        command = [sys.executable, "-m", *shlex.split(line.split("  #")[0]), "-q", "-p", "no:cacheprovider", "-k",
                   "two_convolutions"]
        runs.append(subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300))
    on_reference, on_alice = runs
    assert on_reference.returncode == 0 and "1 passed" in on_reference.stdout, on_reference.stdout
    assert on_alice.returncode == 1 and "The model has 1 nn.Conv2d layer(s)" in on_alice.stdout, on_alice.stdout


def run_guide_commands(tmp_path: Path, data_root: Path | None, skip: str | None = None) -> None:
    """The authoring page's bash block, then the course root page's new term, each run by bash in the folder that
    holds `my-course`, with this grader on the PATH."""
    env = {k: v for k, v in os.environ.items() if k != COURSE_ROOT_ENV} | {"PATH": f"{BIN}:{os.environ['PATH']}"}
    if data_root:
        env["GRADER_DATA_DIR"] = str(data_root)
    for page, marker in (("authoring.md", "grader new"), ("course-root.md", "course init")):
        (commands,) = [block for block in blocks(page, "bash") if marker in block]
        if skip:
            commands = "\n".join(line for line in commands.splitlines() if skip not in line)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "my-course/assignments/a4_demo/demo.ipynb").is_file()
    assert (tmp_path / "my-course/solutions/a5_vehicles/vehicles.ipynb").is_file()
    offered = tomllib.loads((tmp_path / "term-2027/course.toml").read_text())["assignments"]
    assert [a["id"] for a in offered] == ["a4_demo", "a5_vehicles"]


def test_guide_authoring_commands_run(tmp_path: Path) -> None:
    run_guide_commands(tmp_path, None, skip="check-solutions")


@pytest.mark.slow
@pytest.mark.real_data
def test_guide_authoring_commands_run_with_check_solutions(tmp_path: Path, data_root: Path) -> None:
    run_guide_commands(tmp_path, data_root)
    for course in ("my-course", "."):  # this term's course root, and the next term's copy
        assert (tmp_path / course / "reports/check-solutions/a4_demo/solution/report.json").is_file()
