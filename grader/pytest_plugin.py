"""Pytest plugin behind the hidden checks: chooses the code under test and records outcomes.

The checks in `tests/<assignment>/` use the `submission` fixture, which imports the reference
solution by default or `--submission DIR` when the grader points them at a student's work.
With `--results FILE` every check's outcome is appended to FILE as one JSON line the moment it
is known, so the grader reads structured results and never parses console text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from grader.config import Assignment, load_assignment
from grader.data import resolve_data_root
from grader.errors import GraderError
from grader.harness.submission import import_submission


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader")
    group.addoption("--submission", type=Path, help="folder with the submission's files (default: the solution)")
    group.addoption("--data-root", type=Path, help="CIFAR-10 root (default: $GRADER_DATA_DIR or the cache)")
    group.addoption("--results", type=Path, help="append one JSON line per check outcome to this file")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "group(name): the assignment check group a hidden check counts towards")
    config.addinivalue_line("markers", "real_data: needs the CIFAR-10 copy (GRADER_DATA_DIR)")
    path = config.getoption("--results", None)
    if path is not None:
        config.pluginmanager.register(ResultsWriter(path), "grader-results")


@pytest.fixture(scope="module")
def assignment(request: pytest.FixtureRequest) -> Assignment:
    """The assignment whose checks folder holds the requesting test file."""
    return load_assignment(request.path.parent.name)


@pytest.fixture(scope="module")
def submission(request: pytest.FixtureRequest, assignment: Assignment) -> ModuleType:
    """The module under test: the submission given by --submission, else the reference solution."""
    folder = request.config.getoption("--submission") or assignment.solution_dir
    return import_submission(Path(folder).resolve(), assignment.submission.module)


@pytest.fixture(scope="session")
def data_root(request: pytest.FixtureRequest) -> Path:
    """The CIFAR-10 root the real-data checks read; without it they skip, except under CI=true."""
    try:
        return resolve_data_root(request.config.getoption("--data-root"))
    except GraderError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the real data is missing: {exc}")
        pytest.skip(str(exc))


class ResultsWriter:
    """Streams check outcomes to a JSON-lines file, one record per event, flushed immediately."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        items = [{"nodeid": item.nodeid, "group": _group_of(item)} for item in session.items]
        self._write({"event": "collected", "items": items})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._write({"event": "start", "nodeid": nodeid})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self._write({
                "event": "outcome",
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": report.outcome,
                "group": getattr(report, "grader_group", None),
                "message": failure_message(report),
                "details": report.longreprtext[-4000:] if report.failed else "",
                "seconds": report.duration,
            })

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self._write({"event": "finish", "exitstatus": int(exitstatus)})
        self._file.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """Carry the check's group marker on its report, for the results file."""
    report = yield
    report.grader_group = _group_of(item)
    return report


def _group_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("group")
    return marker.args[0] if marker else None


def failure_message(report: pytest.TestReport) -> str:
    """The last line of the failure: the assertion message or the exception, not the traceback."""
    if not report.failed:
        return ""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:500] if text.strip() else "failed"
