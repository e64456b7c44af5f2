"""The cluster's parts that need no running Ray: what travels to a node, what a node checks, what comes back."""

from __future__ import annotations

import os
import subprocess
import time
from concurrent.futures import Future
from pathlib import Path

import pytest

from grader.cluster import (
    ATTEMPT_STARTED,
    MAX_RETRIES,
    WAITING_FOR_RETRY,
    Expectation,
    Job,
    course_digest,
    grader_build,
    node_course,
    node_problem,
    pack_course,
    pack_submission,
    task_resources,
    unpack_submission,
)
from grader.cluster import _Pending as Pending
from grader.config import load_assignment
from grader.context import load_grading_data
from grader.data import DATA_DIR_ENV
from grader.errors import GraderError
from grader.intake import receive
from grader.models import FailureKind
from grader.paths import course_root
from grader.pipeline import failed_report, grader_failure, write_failed_report
from grader.reports import install_report_folder, read_report_json, write_all
from tests.framework.declared import CIFAR2
from tests.framework.test_course_root import make_course


def expect(grader: str | None = None, data: str | None = None) -> Expectation:
    """What a driver grading this checkout's course expects, with another grader build or data where given."""
    return Expectation(grader=grader or grader_build(), course=course_digest(course_root()), data=data)


def job_for(source: Path) -> Job:
    assignment = load_assignment("a2_ffn")
    return Job(job_id="j", assignment=assignment, source_name=source.name, source_is_folder=source.is_dir(),
               payload=pack_submission(source), student_id="s", device_kind="cpu",
               expected=expect())


@pytest.mark.parametrize("shape", ["folder", "file", "folder with a link"])
def test_a_submission_arrives_on_the_node_as_intake_saw_it_here(shape: str, tmp_path: Path) -> None:
    assignment = load_assignment("a2_ffn")
    source = tmp_path / "alice"
    source.mkdir()
    (source / "ffn.py").write_bytes((assignment.solution_dir / "ffn.py").read_bytes())
    (source / "notes").mkdir()
    (source / "notes" / "todo.txt").write_text("train longer\n")
    if shape == "file":
        source = source / "ffn.py"
    if shape == "folder with a link":
        os.symlink("/etc/passwd", source / "notes" / "passwd")
    node = tmp_path / "node"
    node.mkdir()
    rebuilt = unpack_submission(job_for(source), node)
    here, there = receive(assignment, source, tmp_path / "here"), receive(assignment, rebuilt, tmp_path / "there")
    assert rebuilt.name == source.name
    assert there.info == here.info
    assert there.failure == here.failure
    assert (here.failure is not None) == (shape == "folder with a link")


def test_a_node_with_another_grader_build_refuses(tmp_path: Path) -> None:
    problem = node_problem(expect(grader="0.0.1+000000000000"), "node_x (1234abcd)", course_root(), CIFAR2)
    assert problem is not None and problem.kind == FailureKind.VERSION_MISMATCH
    assert problem.message == (f"Node node_x (1234abcd) runs grader {grader_build()}, expected 0.0.1+000000000000, "
                               "so it graded nothing; a TA will regrade this submission.")
    assert node_problem(expect(), "node_x (1234abcd)", course_root(), CIFAR2) is None


def test_a_node_with_other_data_refuses(synthetic_cifar: Path, other_synthetic_cifar: Path, isolated_cache: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(other_synthetic_cifar))
    theirs, ours = (load_grading_data(tree, CIFAR2).fingerprint for tree in (other_synthetic_cifar, synthetic_cifar))
    assert theirs != ours
    problem = node_problem(expect(data=ours), "node_d (1234abcd)", course_root(), CIFAR2)
    assert problem is not None and problem.kind == FailureKind.DATA_MISMATCH
    assert problem.message.startswith(f"Node node_d (1234abcd) has CIFAR-10 fingerprint {theirs}, expected {ours},")


def test_the_course_travels_without_solutions_and_unpacks_once_by_its_digest(tmp_path: Path,
                                                                           isolated_cache: Path) -> None:
    course = make_course(tmp_path / "course", ("a1_dataset", "a2_ffn"))
    digest = course_digest(course)
    on_node = node_course(digest, pack_course(course))
    assert on_node == isolated_cache / "courses" / digest
    assert course_digest(on_node) == digest
    assert sorted(p.name for p in on_node.iterdir()) == ["assignments", "tests"], "no solutions travel"
    assert sorted(p.name for p in (on_node / "tests").iterdir()) == ["a1_dataset", "a2_ffn"]
    assert node_course(digest, b"not unpacked again") == on_node


def test_a_node_with_other_course_content_refuses(tmp_path: Path, isolated_cache: Path) -> None:
    course = make_course(tmp_path / "course")
    expected = Expectation(grader=grader_build(), course=course_digest(course), data=None)
    assert node_problem(expected, "node_c (1234abcd)", course, None) is None
    check = next((course / "tests" / "a1_dataset").glob("test_*.py"))
    check.write_text(check.read_text() + "\n# edited on this node\n")
    problem = node_problem(expected, "node_c (1234abcd)", course, None)
    assert problem is not None and problem.kind == FailureKind.VERSION_MISMATCH
    assert problem.message == (f"Node node_c (1234abcd) has course content {course_digest(course)} in {course}, "
                               f"expected {expected.course}, so it graded nothing; a TA will regrade this submission.")


def test_a_returned_folder_is_written_whole_with_report_json_last(tmp_path: Path) -> None:
    assignment = load_assignment("a1_dataset")
    report = failed_report(assignment, Path("alice.py"), "alice", grader_failure("details"))
    on_node = tmp_path / "node"
    write_all(report, assignment, on_node)
    files = {p.name: p.read_bytes() for p in on_node.iterdir()}
    out = tmp_path / "out"
    out.mkdir()
    (out / ".report.json.x.tmp").write_text("left by a killed driver")
    assert install_report_folder(files, out) == report
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    written_last = max(out.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert written_last.name == "report.json"


def test_a_returned_folder_with_a_corrupt_report_is_refused_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(GraderError, match=r"is not valid JSON; grade the submission again\.$"):
        install_report_folder({"report.json": b'{"schema_version": 2, "assignm', "student.md": b"# cut"}, out)
    assert not out.exists()


def test_a_failed_report_says_which_runner_and_node_failed(tmp_path: Path) -> None:
    assignment = load_assignment("a1_dataset")
    report = write_failed_report(assignment, Path("alice.py"), "alice", grader_failure("details"), tmp_path,
                                 runner="docker", node="")
    assert read_report_json(tmp_path / "report.json") == report
    assert (report.environment.runner, report.environment.node, report.score.total) == ("docker", "", 0)


def test_a_task_asks_for_the_assignments_threads_and_memory_and_one_gpu_on_cuda() -> None:
    assignment = load_assignment("a2_ffn")
    cpu, cuda = task_resources(assignment, "cpu"), task_resources(assignment, "cuda")
    assert cpu == {"num_cpus": assignment.limits.threads, "num_gpus": 0,
                   "memory": (assignment.limits.memory_mb + assignment.limits.grader_memory_mb) * 2**20}
    assert cuda == cpu | {"num_gpus": 1}


def test_a_try_whose_worker_is_gone_says_at_once_that_it_is_retried(tmp_path: Path) -> None:
    source = tmp_path / "ffn.py"
    source.write_text("x = 1\n")
    said: list[str] = []
    pending = Pending(job_for(source), source, tmp_path / "out", said.append, Future())
    worker = subprocess.Popen(["sleep", "60"])  # a worker on the driver's own node, watched by its PID
    pending.relay(f"{ATTEMPT_STARTED} here {worker.pid}", "here")
    assert pending.worker is not None and pending.worker.alive(set())
    worker.kill()  # not waited for: a zombie has ended too
    deadline = time.monotonic() + 10
    while pending.worker.alive(set()) and time.monotonic() < deadline:  # the kernel delivers SIGKILL
        time.sleep(0.01)
    assert not pending.worker.alive(set())
    worker.wait()
    assert not pending.worker.alive(set())
    pending.try_lost()
    assert said == ["started", f"retrying (attempt 2 of {MAX_RETRIES + 1}): {WAITING_FOR_RETRY}"]

    pending.relay(f"{ATTEMPT_STARTED} elsewhere 1", "here")  # another node's worker: watched by its node
    assert said[-1] == f"retrying (attempt 2 of {MAX_RETRIES + 1}): started"
    assert pending.worker is not None and pending.worker.alive({"elsewhere"}) and not pending.worker.alive({"here"})
    pending.relay(f"{ATTEMPT_STARTED} elsewhere 1", "here")
    pending.try_lost()  # the last try: Ray retries no more, so nothing is said
    assert said[-1] == f"retrying (attempt {MAX_RETRIES + 1} of {MAX_RETRIES + 1}): started"
