"""Grading on a real Ray cluster of `ray start` nodes: same scores as the local runner, and every fault survived."""

from __future__ import annotations

import contextlib
import itertools
import logging
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import psutil
import pytest

from grader.batch import discover
from grader.cluster import MAX_RETRIES, Dispatcher, course_digest, course_files
from grader.config import load_assignment
from grader.context import load_grading_data
from grader.data import CACHE_DIR_ENV, DATA_DIR_ENV
from grader.models import FailureKind, Report
from grader.paths import course_root
from grader.reports import read_report_json
from tests.framework.cluster.local_cluster import LocalCluster, NodeSpec, RayNode
from tests.framework.declared import CIFAR2

pytestmark = pytest.mark.cluster
GRADER = str(Path(sys.executable).with_name("grader"))
TASK_TITLE = "ray::grade_on_node"  # what Ray calls a worker process while it runs a grading task
WAIT_SECONDS = 300
BIG_BATCH = 2000
# The driver's threads are its main thread, the dispatcher's loop and Ray's own pools (gRPC, its event loops), fixed
# in number; this leaves room for those pools to grow a little under load, and is 100 times below a thread each.
THREAD_HEADROOM = 20


def batch_command(assignment_id: str, folder: Path, out: Path, cluster: str) -> list[str]:
    return [GRADER, "batch", assignment_id, str(folder), "--out", str(out), "--cluster", cluster, "--plain"]


def reports_in(out: Path) -> dict[str, Report]:
    return {p.parent.name: read_report_json(p) for p in sorted(out.glob("*/report.json"))}


def node_of(report: Report) -> str:
    """The Ray node name a report was graded on ("node_a (1a2b3c4d)" -> "node_a")."""
    return report.environment.node.split(" ")[0]


def submit_all(dispatcher: Dispatcher, classes: dict[str, Path], out: Path,
               statuses: dict[str, list[str]] | None = None) -> dict[tuple[str, str], Future[Report]]:
    """Every submission of `classes` handed to the dispatcher at once."""
    futures = {}
    for assignment_id, folder in classes.items():
        assignment = load_assignment(assignment_id)
        for entry in discover(folder):
            said = statuses.setdefault(entry.student_id, []) if statuses is not None else []
            futures[assignment_id, entry.student_id] = dispatcher.submit(
                assignment, entry.source, out / assignment_id / entry.student_id, entry.student_id, said.append)
    return futures


def node_cpus(cluster: LocalCluster) -> int:
    """The CPUs each of the cluster's nodes has: one submission's worth."""
    return cluster.nodes[0].spec.cpus


def tasks_on(node: RayNode) -> list[psutil.Process]:
    """The worker processes of `node` that are grading right now."""
    try:
        workers = psutil.Process(node.raylet_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [w for w in workers if _title(w) == TASK_TITLE]


def _title(process: psutil.Process) -> str:
    try:
        return (process.cmdline() or [""])[0]
    except psutil.Error:
        return ""


@pytest.fixture
def extra_node(cluster: LocalCluster) -> Iterator[list[RayNode]]:
    """Nodes a test adds; each is stopped after the test, so the next one sees node_a and node_b only."""
    added: list[RayNode] = []
    yield added
    for node in added:
        if psutil.pid_exists(node.raylet_pid):
            cluster.remove_node(node)


def test_a_batch_on_two_nodes_scores_as_the_local_runner(cluster: LocalCluster, classes: dict[str, Path],
                                                         local_scores: dict[tuple[str, str], float],
                                                         tmp_path: Path) -> None:
    nodes = set()
    for assignment_id, folder in classes.items():
        out = tmp_path / assignment_id
        done = subprocess.run(batch_command(assignment_id, folder, out, cluster.address),
                              capture_output=True, text=True, timeout=WAIT_SECONDS)
        assert done.returncode == 0, done.stderr[-2000:]
        graded = reports_in(out)
        assert {s: r.score.total for s, r in graded.items()} == {
            s: score for (a, s), score in local_scores.items() if a == assignment_id}
        assert len((out / "grades.csv").read_text().splitlines()) == len(graded) + 1
        reference = graded.get("reference")
        assert reference is None or reference.metrics is not None, "a model trained and scored on a node, not 0 = 0"
        nodes |= {node_of(r) for r in graded.values()}
    assert nodes == {"node_a", "node_b"}, "both nodes grade: each takes one submission at a time"


def test_submissions_of_a_killed_node_are_graded_on_the_others(cluster: LocalCluster, classes: dict[str, Path],
                                                               local_scores: dict[tuple[str, str], float],
                                                               extra_node: list[RayNode], tmp_path: Path,
                                                               synthetic_cifar: Path) -> None:
    doomed = cluster.add_node(NodeSpec("node_c", cpus=node_cpus(cluster)))
    extra_node.append(doomed)
    a2 = {"a2_ffn": classes["a2_ffn"]}
    with Dispatcher(cluster.address, synthetic_cifar) as dispatcher:
        futures = submit_all(dispatcher, a2, tmp_path)
        while not [t for t in tasks_on(doomed) if time.time() - t.create_time() > 1]:
            assert not all(f.done() for f in futures.values()), "no submission was ever graded on node_c"
            time.sleep(0.1)
        orphans = psutil.Process(doomed.raylet_pid).children(recursive=True)
        cluster.kill_node(doomed)
        reports = {key: future.result(timeout=WAIT_SECONDS) for key, future in futures.items()}
    assert {key: r.score.total for key, r in reports.items()} == {
        key: score for key, score in local_scores.items() if key[0] == "a2_ffn"}
    assert {node_of(r) for r in reports.values()} <= {"node_a", "node_b"}
    assert sorted(reports_in(tmp_path / "a2_ffn")) == sorted(e.student_id for e in discover(a2["a2_ffn"]))
    assert not list(tmp_path.rglob("*.tmp"))
    psutil.wait_procs(orphans, timeout=30)
    assert not [p.pid for p in orphans if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], \
        "the dead node's workers and their sandboxes end with it"


def test_a_killed_driver_resumes_without_grading_twice(cluster: LocalCluster, classes: dict[str, Path],
                                                       local_scores: dict[tuple[str, str], float],
                                                       tmp_path: Path) -> None:
    assignment_id = "a2_ffn"
    command = batch_command(assignment_id, classes[assignment_id], tmp_path, cluster.address)
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT_SECONDS
    while not list(tmp_path.glob("*/report.json")) and first.poll() is None:
        assert time.monotonic() < deadline, "the first run graded nothing in time"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/report.json")}
    assert 1 <= len(before) < len(discover(classes[assignment_id])), "the kill lands part-way through the batch"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    graded = reports_in(tmp_path)
    assert {s: r.score.total for s, r in graded.items()} == {
        s: score for (a, s), score in local_scores.items() if a == assignment_id}
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in before.items()), "a finished report was graded again"
    assert rerun.stdout.count("(already graded)") == len(before)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_node_with_other_data_grades_nothing(cluster: LocalCluster, classes: dict[str, Path],
                                               local_scores: dict[tuple[str, str], float],
                                               extra_node: list[RayNode], synthetic_cifar: Path,
                                               other_synthetic_cifar: Path, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    other = other_synthetic_cifar
    extra_node.append(cluster.add_node(NodeSpec("node_d", cpus=node_cpus(cluster), env={DATA_DIR_ENV: str(other)})))
    theirs, ours = load_grading_data(other, CIFAR2).fingerprint, load_grading_data(synthetic_cifar, CIFAR2).fingerprint
    with caplog.at_level(logging.WARNING, logger="grader.cluster"), \
            Dispatcher(cluster.address, synthetic_cifar) as dispatcher:
        futures = submit_all(dispatcher, {"a1_dataset": classes["a1_dataset"]}, tmp_path / "out")
        reports = {key: future.result(timeout=WAIT_SECONDS) for key, future in futures.items()}
    assert {key: r.score.total for key, r in reports.items()} == {
        key: score for key, score in local_scores.items() if key[0] == "a1_dataset"}
    assert {node_of(r) for r in reports.values()} <= {"node_a", "node_b"}
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Node node_d ")]
    assert len(refusals) == 1, "a node that refused once gets no more submissions from this driver"
    assert f"has CIFAR-10 fingerprint {theirs}, expected {ours}, so it graded nothing" in refusals[0]


def test_with_only_a_wrong_node_left_the_report_says_why(cluster: LocalCluster, extra_node: list[RayNode],
                                                         synthetic_cifar: Path, other_synthetic_cifar: Path,
                                                         tmp_path: Path) -> None:
    other = other_synthetic_cifar
    # The only GPU node has the wrong data: a CUDA submission can go nowhere else.
    extra_node.append(cluster.add_node(NodeSpec("gpu_node", cpus=node_cpus(cluster), gpus=1,
                                                env={DATA_DIR_ENV: str(other)})))
    assignment = load_assignment("a1_dataset")
    source = assignment.solution_dir
    with Dispatcher(cluster.address, synthetic_cifar, "cuda") as dispatcher:
        report = dispatcher.submit(assignment, source, tmp_path / "out", "ref").result(timeout=WAIT_SECONDS)
    theirs, ours = load_grading_data(other, CIFAR2).fingerprint, load_grading_data(synthetic_cifar, CIFAR2).fingerprint
    assert [(f.stage, f.kind) for f in report.failures] == [("cluster", FailureKind.DATA_MISMATCH)]
    assert report.failures[0].message.startswith("Node gpu_node (")
    assert f"has CIFAR-10 fingerprint {theirs}, expected {ours}, so it graded nothing" in report.failures[0].message
    assert report.score.total == 0 and report.checks == []
    assert read_report_json(tmp_path / "out" / "report.json") == report


def test_a_node_with_other_course_content_refuses(cluster: LocalCluster, extra_node: list[RayNode],
                                                  synthetic_cifar: Path, tmp_path: Path) -> None:
    """The only GPU node already holds, under the driver's course digest, course content edited on the node."""
    ours = course_digest(course_root())
    theirs = tmp_path / "node-cache" / "courses" / ours
    for folder in course_files(course_root()):
        shutil.copytree(folder, theirs / folder.relative_to(course_root()))
    (theirs / "tests" / "a1_dataset" / "test_dataset.py").write_text("def test_edited_on_the_node(): pass\n")
    extra_node.append(cluster.add_node(NodeSpec("gpu_node", cpus=node_cpus(cluster), gpus=1, env={
        CACHE_DIR_ENV: str(tmp_path / "node-cache"), DATA_DIR_ENV: str(synthetic_cifar)})))
    assignment = load_assignment("a1_dataset")
    with Dispatcher(cluster.address, synthetic_cifar, "cuda") as dispatcher:
        report = dispatcher.submit(assignment, assignment.solution_dir, tmp_path / "out", "ref").result(
            timeout=WAIT_SECONDS)
    assert [(f.stage, f.kind) for f in report.failures] == [("cluster", FailureKind.VERSION_MISMATCH)]
    message = report.failures[0].message
    assert message.startswith("Node gpu_node (") and message.endswith(
        f") has course content {course_digest(theirs)} in {theirs}, expected {ours}, so it graded nothing; a TA "
        "will regrade this submission.")
    assert report.score.total == 0 and report.checks == []


def test_a_gpu_node_grades_one_cuda_submission_at_a_time(cluster: LocalCluster, classes: dict[str, Path],
                                                         extra_node: list[RayNode], synthetic_cifar: Path,
                                                         tmp_path: Path) -> None:
    # Three submissions' worth of CPUs but one GPU: CUDA grading must still go one by one, and only here.
    extra_node.append(cluster.add_node(NodeSpec("gpu_node", cpus=3 * node_cpus(cluster), gpus=1)))
    with Dispatcher(cluster.address, synthetic_cifar, "auto") as dispatcher:
        assert dispatcher.device_kind == "cuda"
        futures = submit_all(dispatcher, {"a1_dataset": classes["a1_dataset"]}, tmp_path)
        reports = [future.result(timeout=WAIT_SECONDS) for future in futures.values()]
    assert {node_of(r) for r in reports} == {"gpu_node"}
    assert {r.environment.device for r in reports} == {"cuda (GPU 0)"}
    spans = sorted((r.graded_at.timestamp() - r.seconds, r.graded_at.timestamp()) for r in reports)
    overlaps = [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1] - 0.05]
    assert not overlaps, "two CUDA submissions ran at once on the single GPU"


def test_a_submission_whose_worker_always_dies_ends_as_worker_lost(cluster: LocalCluster, synthetic_cifar: Path,
                                                                   tmp_path: Path) -> None:
    assignment = load_assignment("a1_dataset")
    kills: list[int] = []
    statuses: list[str] = []
    with Dispatcher(cluster.address, synthetic_cifar) as dispatcher:
        future = dispatcher.submit(assignment, assignment.solution_dir, tmp_path / "out", "ref", statuses.append)
        killer = threading.Thread(target=_kill_grading_workers, args=(cluster, future, kills), daemon=True)
        killer.start()
        report = future.result(timeout=WAIT_SECONDS)
        killer.join()
    assert len(kills) == MAX_RETRIES + 1, "Ray retried the task after each lost worker, then gave up"
    assert [(f.stage, f.kind) for f in report.failures] == [("cluster", FailureKind.WORKER_LOST)]
    assert statuses[0] == "queued"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        ["report.json", "report.md", "report.html", "report-ta.md", "report-ta.html", "results.json"])


def _kill_grading_workers(cluster: LocalCluster, future: Future[Report], kills: list[int]) -> None:
    """SIGKILL every worker process that starts grading, until the submission's future is done."""
    while not future.done():
        for process in cluster.processes():
            if _title(process) == TASK_TITLE and process.pid not in kills:
                process.kill()
                kills.append(process.pid)
        time.sleep(0.05)


def test_local_mode_grades_on_an_embedded_ray(classes: dict[str, Path], local_scores: dict[tuple[str, str], float],
                                              tmp_path: Path) -> None:
    folder = tmp_path / "two"
    for name in ("ada_full_marks", "cy_broken"):
        shutil.copytree(classes["a1_dataset"] / name, folder / name)
    done = subprocess.run(batch_command("a1_dataset", folder, tmp_path / "out", "local"),
                          capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert done.returncode == 0, f"{shlex.join(done.args)}: {done.stderr[-2000:]}"
    graded = reports_in(tmp_path / "out")
    assert {s: r.score.total for s, r in graded.items()} == {
        s: local_scores["a1_dataset", s] for s in ("ada_full_marks", "cy_broken")}


def test_a_big_batch_holds_no_thread_per_submission(cluster: LocalCluster, tmp_path: Path) -> None:
    peaks = {}
    for count in (2, BIG_BATCH):
        folder = tmp_path / f"class{count}"
        folder.mkdir()
        for i in range(count):
            (folder / f"s{i:04d}.rar").write_bytes(b"Rar!\x1a\x07\x00")  # refused by intake on the node
        out = tmp_path / f"out{count}"
        peaks[count], done = _peak_threads(batch_command("a1_dataset", folder, out, cluster.address), tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(done.stdout.splitlines()) >= count, "a progress line per submission"
        graded = reports_in(out)
        assert len(graded) == count and {r.failures[0].kind for r in graded.values()} == {FailureKind.INTAKE}
        assert len((out / "grades.csv").read_text().splitlines()) == count + 1
    assert peaks[BIG_BATCH] <= peaks[2] + THREAD_HEADROOM, f"threads at the peak of each batch: {peaks}"


def _peak_threads(command: list[str], tmp_path: Path) -> tuple[int, subprocess.CompletedProcess]:
    """Run `command`, sampling its thread count: the largest seen, and what it printed."""
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as out, stderr.open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        peak, deadline = 0, time.monotonic() + WAIT_SECONDS
        while process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, psutil.Process(process.pid).num_threads())
            time.sleep(0.05)
        process.kill()
        process.wait()
    return peak, subprocess.CompletedProcess(command, process.returncode, stdout.read_text(), stderr.read_text())
