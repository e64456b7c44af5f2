"""Pytest plugin behind the hidden checks: chooses the code under test, records outcomes and observations.

The checks in `tests/<assignment>/` use the `submission` fixture, which imports the reference
solution by default or `--submission DIR` when the grader points them at a student's work.
With `--results FILE` every event (collection, each check's outcome, each observation) is
appended to FILE as one typed JSON line the moment it is known (`grader.protocol`), so the
grader reads structured results and never parses console text. A check that observes
(`observe` fixture) is judged by its verdict: inline when run as a plain test, in a clean
process when the grader runs it (see `grader.observation`).

A check marked `@pytest.mark.calls("train_one_epoch")` that runs out of time makes every later
check calling the same function fail at once, so one endless function costs one time limit.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from grader.config import Assignment, load_assignment
from grader.data import resolve_data_root
from grader.errors import GraderError
from grader.files import trim
from grader.harness.submission import import_submission
from grader.observation import Observation, judge
from grader.protocol import (
    CheckObserved,
    CheckReported,
    ChecksCollected,
    ChecksFinished,
    CheckStarted,
    CollectedCheck,
    append_record,
)

TIMEOUT_MARK = "from pytest-timeout"  # the end of pytest-timeout's failure message


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--submission", type=Path, help="folder with the submission's files (default: the solution)")
    group.addoption("--data-root", type=Path, help="CIFAR-10 root (default: $GRADER_DATA_DIR or the cache)")
    group.addoption("--results", type=Path, help="append one JSON line per check event to this file")
    group.addoption("--timed-out", action="append", default=[],
                    help="a submission function that already ran out of time (checks calling it fail at once)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "group(name): the assignment check group a hidden check counts towards")
    config.addinivalue_line("markers", "calls(*names): the submission's functions a hidden check calls")
    config.addinivalue_line("markers", "real_data: needs the CIFAR-10 copy (GRADER_DATA_DIR)")
    config.pluginmanager.register(HangGuard(config.getoption("--timed-out", [])), "grader-hang-guard")
    path = config.getoption("--results", None)
    if path is not None:
        config.pluginmanager.register(ResultsWriter(path, _limit(config)), "grader-results")


@pytest.fixture(scope="module")
def assignment(request: pytest.FixtureRequest) -> Assignment:
    """The assignment whose checks folder holds the requesting test file."""
    return load_assignment(request.path.parent.name)


@pytest.fixture(scope="module")
def submission(request: pytest.FixtureRequest, assignment: Assignment,
               tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The module under test: the submission given by --submission, else the reference solution; a folder with
    only the module's notebook (a solution notebook) is imported as grading imports a notebook."""
    folder = Path(request.config.getoption("--submission") or assignment.solution_dir).resolve()
    name = assignment.submission.module
    notebook = folder / f"{name}.ipynb"
    if not (folder / f"{name}.py").is_file() and notebook.is_file():
        from grader.notebook import from_notebook_file  # IPython is slow to import; graded folders hold the .py

        folder = tmp_path_factory.mktemp("notebook")
        module = from_notebook_file(notebook, f"{name}.py", assignment.submission.api)
        (folder / f"{name}.py").write_text(module.text, encoding="utf-8")
    return import_submission(folder, name)


@pytest.fixture(scope="session")
def data_root(request: pytest.FixtureRequest) -> Path:
    """The CIFAR-10 root the real-data checks read; without it they skip, except under CI=true."""
    try:
        return resolve_data_root(request.config.getoption("--data-root"))
    except GraderError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real data is missing: {exc}")
        pytest.skip(str(exc))


@pytest.fixture
def observe(request: pytest.FixtureRequest, assignment: Assignment) -> Callable[[Observation], None]:
    """Hand what the check saw to its verdict: written out when grading, judged here in a plain test run."""
    writer = request.config.pluginmanager.get_plugin("grader-results")
    check = request.function

    def record(observation: Observation) -> None:
        if writer is not None:
            writer.observed(request.node.nodeid, observation)
        elif (failure := judge(check, observation.model_dump_json(), assignment)) is not None:
            pytest.fail(failure, pytrace=False)

    return record


def calls_of(item: pytest.Item) -> list[str]:
    marker = item.get_closest_marker("calls")
    return list(marker.args) if marker else []


def _group_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("group")
    return marker.args[0] if marker else None


def _limit(config: pytest.Config) -> float:
    return float(config.getoption("timeout", 0) or 0)


class HangGuard:
    """Fails at once the checks that call a function that already ran out of time."""

    def __init__(self, hung: list[str]) -> None:
        self.hung: dict[str, str] = dict.fromkeys(hung, "an earlier run of the checks")
        self.items: dict[str, pytest.Item] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = {item.nodeid: item for item in session.items}

    def pytest_runtest_call(self, item: pytest.Item) -> None:
        for name in calls_of(item):
            if name in self.hung:
                pytest.fail(f"Not run: {name} did not return within {_limit(item.config):g} s in "
                            f"{self.hung[name]}, so every check that calls it fails at once.", pytrace=False)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        item = self.items.get(report.nodeid)
        if item is not None and report.failed and TIMEOUT_MARK in report.longreprtext:
            for name in calls_of(item):
                self.hung.setdefault(name, item.name)


class ResultsWriter:
    """Streams check events to a JSON-lines file, one record per event, flushed immediately."""

    def __init__(self, path: Path, timeout_seconds: float) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._timeout = timeout_seconds
        self._calls: dict[str, list[str]] = {}

    def _write(self, record: BaseModel) -> None:
        append_record(self._file, record)
        os.fsync(self._file.fileno())

    def observed(self, nodeid: str, observation: Observation) -> None:
        self._write(CheckObserved(nodeid=nodeid, observation=observation.model_dump(mode="json")))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        items = [CollectedCheck(nodeid=item.nodeid, group=_group_of(item), calls=calls_of(item))
                 for item in session.items]
        self._calls = {item.nodeid: item.calls for item in items}
        self._write(ChecksCollected(items=items))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._write(CheckStarted(nodeid=nodeid))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and report.outcome == "passed":
            return
        timed_out = report.failed and TIMEOUT_MARK in report.longreprtext
        self._write(CheckReported(
            nodeid=report.nodeid, when=report.when, outcome=report.outcome, timed_out=timed_out,
            message=self._message(report, timed_out), details=trim(report.longreprtext) if report.failed else "",
            seconds=report.duration))

    def _message(self, report: pytest.TestReport, timed_out: bool) -> str:
        if not timed_out:
            return failure_message(report)
        calls = self._calls.get(report.nodeid, [])
        if calls:
            return f"{' or '.join(calls)} did not return within {self._timeout:g} s."
        return f"The check did not finish within {self._timeout:g} s."

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self._write(ChecksFinished())
        self._file.close()


def failure_message(report: pytest.TestReport) -> str:
    """The last line of the failure: the assertion message or the exception, not the traceback."""
    if not report.failed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    text = text.strip().removeprefix("Failed: ")  # pytest.fail's own prefix: the sentence is the check's
    return text.splitlines()[0][:500] if text else "failed"
