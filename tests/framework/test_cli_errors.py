"""The `grader` command's own errors: exit status 2 and one `error:` line on stderr, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader import __version__, cli
from grader.config import load_assignment

SUBMISSION = str(load_assignment("a2_ffn").solution_dir)
CASES = {  # case: (arguments, with {tmp} for the test's folder; a fragment the message must hold)
    "unknown assignment": (["grade", "a9_nope", SUBMISSION, "--out", "{tmp}/out"], "a9_nope"),
    "missing data": (["grade", "a2_ffn", SUBMISSION, "--out", "{tmp}/out"], "grader data prepare"),
    "unwritable --out": (["grade", "a2_ffn", SUBMISSION, "--out", "{tmp}/a-file/out"], "Cannot write reports"),
    "nonexistent submission": (["grade", "a2_ffn", "{tmp}/nobody.zip", "--out", "{tmp}/out"], "nobody.zip"),
    "batch of a missing folder": (["batch", "a2_ffn", "{tmp}/nowhere", "--out", "{tmp}/out"], "nowhere"),
    "markup-like name": (["grade", "a2_ffn", "{tmp}/ada[/b][metric].zip", "--out", "{tmp}/out"], "[/b][metric]"),
    "batch on a cluster nothing answers at": (
        ["batch", "a2_ffn", "{tmp}/class", "--out", "{tmp}/out", "--cluster", "127.0.0.1:1"],
        "Nothing answers at 127.0.0.1:1"),
    "batch on a cluster address that is none": (
        ["batch", "a2_ffn", "{tmp}/class", "--out", "{tmp}/out", "--cluster", "head-node"], "not 'head-node'"),
    "similarity of a folder without reports": (["similarity", "a2_ffn", "{tmp}/class"], "No report.json"),
    "batch on a cluster with the docker runner": (
        ["batch", "a2_ffn", "{tmp}/class", "--out", "{tmp}/out", "--cluster", "local", "--runner", "docker"],
        "drop --runner docker"),
}


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a regular file where --out wants a folder; no data where the grader looks; no GPU."""
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "class").mkdir()
    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("GRADER_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cli, "gpu_count", lambda: 0)  # spares importing torch
    return tmp_path


def arguments(case: str, tmp: Path) -> list[str]:
    return [arg.replace("{tmp}", str(tmp)) for arg in CASES[case][0]]


def assert_one_error_line(stderr: str, fragment: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert fragment in lines[0]


@pytest.mark.parametrize("case", CASES)
def test_error_is_one_line_and_exit_2(case: str, places: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    if case.startswith("batch"):  # batch resolves the data root before it lists the folder or joins a cluster
        for split in ("train", "test"):
            (places / "no-data" / split).mkdir()
    monkeypatch.setattr(sys, "argv", ["grader", *arguments(case, places)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert_one_error_line(capsys.readouterr().err, CASES[case][1])


def test_the_installed_entry_point_exits_2_with_one_line(places: Path) -> None:
    """The same through a real process: what a TA's shell sees."""
    command = [sys.executable, "-c", "from grader.cli import main; main()", *arguments("missing data", places)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ | {"COLUMNS": "40"})
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "GRADER_DATA_DIR")


@pytest.mark.parametrize("args", [["--version"], ["-h"], ["batch", "-h"], ["data", "info", "-h"]])
def test_version_and_short_help(args: list[str], monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["grader", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # rich may colour the help
    assert f"grader {__version__}" in out if args == ["--version"] else "Usage:" in out and "[OPTIONS]" in out
