"""Cluster: one a2 batch graded locally with 2 workers, then on Ray with 2 `ray start` nodes here, then with 1.

Each node declares one submission's CPUs (the assignment's threads), so 2 nodes grade 2 at once, as 2 local
workers do. Ray's own cost per submission is a cheap submission graded alone, again and again, by the local
pipeline and by the cluster: what the cluster adds to the wall time (send, schedule, bring the folder back),
after a first task that starts the node's worker process.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.common import Config, Result, Table, reference_copy
from grader.batch import BatchEntry, BatchOptions, discover, finish_batch, grade_entries, run_batch
from grader.cluster import Dispatcher
from grader.config import Assignment, load_assignment
from grader.data import DATA_DIR_ENV
from grader.models import Report
from grader.paths import examples_dir
from grader.pipeline import GradeOptions, grade
from tests.framework.cluster.local_cluster import ClusterUnavailable, LocalCluster, NodeSpec

NAME = "cluster"
TARGET_OVERHEAD_SECONDS = 1.0
LOCAL_RUNNER, TWO_NODES = "local runner, --workers 2", "Ray, 2 nodes"
PER_GRADING = "wall / grading s"
CHEAP = examples_dir() / "a2_ffn" / "fay_broken.py"  # stops at the import stage: almost all of its wall is overhead


def run(cfg: Config) -> Result:
    assignment = load_assignment("a2_ffn")
    count, repeats, rounds = (4, 3, 1) if cfg.quick else (8, 5, 2)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp) / "submissions"
        for i in range(count):
            reference_copy(assignment, folder / f"student{i:02d}", 1)
        out = Path(tmp) / "out"
        local_overhead = [_overhead(lambda s, o: grade(assignment, CHEAP, o, GradeOptions(
            data_root=cfg.data_root, student_id=s)), out / "local-cheap", i) for i in range(repeats)]
        try:
            rows, startup, ray_overhead = _on_cluster(cfg, assignment, folder, out, count, repeats, rounds)
        except ClusterUnavailable as exc:
            return Result(NAME, notes=[f"no Ray cluster here: {exc}"])
    two_nodes, local_wall = (statistics.median(r["wall s"] for r in rows if r["runner"] == name)
                             for name in (TWO_NODES, LOCAL_RUNNER))
    two_nodes_ratio, local_ratio = (statistics.median(r[PER_GRADING] for r in rows if r["runner"] == name)
                                    for name in (TWO_NODES, LOCAL_RUNNER))
    overhead = statistics.median(ray_overhead) - statistics.median(local_overhead)
    overhead_rows = [{"runner": name, "s min": min(values), "s median": statistics.median(values)}
                     for name, values in (("local pipeline", local_overhead), ("Ray cluster, 1 node", ray_overhead))]
    return Result(NAME, [
        Table(f"{count} copies of the a2 reference, EPOCHS = 1 (overridden), {cfg.device}, in this order", rows),
        Table(f"wall minus grading time of one cheap submission ({CHEAP.name}), {repeats} times", overhead_rows),
        Table("starting the cluster", [{"step": step, "s": seconds} for step, seconds in startup.items()]),
    ], [
        f"Ray's overhead per submission: {overhead:.2f} s (median, cluster minus local); target < "
        f"{TARGET_OVERHEAD_SECONDS:g} s: {'met' if overhead < TARGET_OVERHEAD_SECONDS else 'missed'}",
        f"2 nodes vs --workers 2: {two_nodes:.1f} s vs {local_wall:.1f} s (median of {rounds} alternating "
        f"round(s)); target no slower: {'met' if two_nodes <= local_wall else 'missed'}",
        f"the same, as wall / median grading seconds (other jobs' load moves the grading seconds of both; "
        f"{count}/2 = {count / 2:g} is 2 at a time with no loss): {two_nodes_ratio:.2f} vs {local_ratio:.2f}",
    ])


def _on_cluster(cfg: Config, assignment: Assignment, folder: Path, out: Path, count: int, repeats: int,
                rounds: int) -> tuple[list[dict], dict[str, float], list[float]]:
    """Ray's overhead on 1 node; the batch locally and on 2 nodes in alternating rounds (the load drifts); on 1."""
    spec = {"cpus": assignment.limits.threads, "env": {DATA_DIR_ENV: str(cfg.data_root)}}
    startup = {}
    with LocalCluster() as cluster:
        start = time.perf_counter()
        cluster.add_node(NodeSpec("node_a", **spec))
        startup["ray start --head"] = time.perf_counter() - start
        start = time.perf_counter()
        with Dispatcher(cluster.address, cfg.data_root) as dispatcher:
            startup["driver connects"] = time.perf_counter() - start
            overhead = [_overhead(lambda s, o: dispatcher.submit(assignment, CHEAP, o, s).result(),
                                  out / "ray-cheap", i) for i in range(repeats + 1)]
            startup["first task (worker start, data fingerprint)"] = overhead.pop(0)
            start = time.perf_counter()
            second = cluster.add_node(NodeSpec("node_b", **spec))
            startup["ray start (second node)"] = time.perf_counter() - start
            rows = []

            def on_ray(assignment: Assignment, entries: list[BatchEntry], out: Path) -> list[Report]:
                reports = grade_entries(assignment, entries, out, cfg.data_root, dispatcher.submit_grading)
                return finish_batch(assignment, entries, out, reports)

            for i in range(rounds):
                local = partial(run_batch, options=BatchOptions(workers=2, data_root=cfg.data_root), grade_one=grade)
                rows += [_batch(LOCAL_RUNNER, assignment, folder, out / f"local{i}", count, local),
                         _batch(TWO_NODES, assignment, folder, out / f"two{i}", count, on_ray)]
            cluster.remove_node(second)
            rows.append(_batch("Ray, 1 node", assignment, folder, out / "one", count, on_ray))
    return rows, startup, overhead


def _batch(name: str, assignment: Assignment, folder: Path, out: Path, count: int,
           grade_all: Callable[[Assignment, list[BatchEntry], Path], list[Report]]) -> dict:
    """One batch's wall time, with the load average before and after: other jobs share the machine."""
    load_before, start = os.getloadavg()[0], time.perf_counter()
    reports = grade_all(assignment, discover(folder), out)
    wall = time.perf_counter() - start
    if any(r.failures for r in reports):
        raise RuntimeError(f"a reference copy failed on {name}: {reports[0].failures}")
    nodes = sorted({r.environment.node.split(" ")[0] for r in reports})
    grading = statistics.median(r.seconds for r in reports)
    return {"runner": name, "wall s": wall, "s per submission": wall / count, "median grading s": grading,
            PER_GRADING: wall / grading, "nodes used": ", ".join(nodes), "load before": load_before,
            "load after": os.getloadavg()[0]}


def _overhead(grade_cheap: Callable[[str, Path], Report], out: Path, i: int) -> float:
    """Wall time of one grade of the cheap submission minus the pipeline's own seconds."""
    folder = out / f"s{i}"
    start = time.perf_counter()
    report = grade_cheap(f"s{i}", folder)
    wall = time.perf_counter() - start
    shutil.rmtree(folder)
    return wall - report.seconds
