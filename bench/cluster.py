"""Cluster: one a2 batch graded locally with 2 workers, then on a Ray cluster of 1 and of 2 `ray start` nodes here.

Each node declares one submission's CPUs (the assignment's threads), so 2 nodes grade 2 at once, as 2 local
workers do. Ray's own cost per submission is a cheap submission graded alone, again and again, by the local
pipeline and by the cluster: what the cluster adds to the wall time (send, schedule, bring the folder back),
after a first task that starts the node's worker process.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table, min_median, reference_copy
from grader.batch import BatchOptions, discover, run_batch
from grader.cluster import Dispatcher
from grader.config import Assignment, load_assignment
from grader.data import DATA_DIR_ENV
from grader.local_cluster import ClusterUnavailable, LocalCluster, NodeSpec
from grader.models import Report
from grader.paths import EXAMPLES_DIR
from grader.pipeline import GradeOptions, grade

NAME = "cluster"
TARGET_OVERHEAD_SECONDS = 1.0
CHEAP = EXAMPLES_DIR / "a2_ffn" / "fay_broken.py"  # stops at the import stage: almost all of its wall is overhead


def run(cfg: Config) -> Result:
    assignment = load_assignment("a2_ffn")
    count, repeats = (4, 3) if cfg.quick else (8, 5)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        folder = Path(tmp) / "submissions"
        for i in range(count):
            reference_copy(assignment, folder / f"student{i:02d}", 1)
        out = Path(tmp) / "out"
        start = time.perf_counter()
        local = run_batch(assignment, discover(folder), out / "local", BatchOptions(workers=2, data_root=cfg.data_root))
        rows = [_batch_row("local runner, --workers 2", local, time.perf_counter() - start, count)]
        local_overhead = [_overhead(lambda s, o: grade(assignment, CHEAP, o, GradeOptions(
            data_root=cfg.data_root, student_id=s)), out / "local-cheap", i) for i in range(repeats)]
        try:
            cluster_rows, startup, ray_overhead = _on_cluster(cfg, assignment, folder, out, count, repeats)
        except ClusterUnavailable as exc:
            return Result(NAME, [Table(f"{count} copies of the a2 reference, EPOCHS = 1", rows)],
                          [f"no Ray cluster here: {exc}"])
    rows += cluster_rows
    two_nodes, local_wall = rows[-1]["wall s"], rows[0]["wall s"]
    overhead = min_median(ray_overhead)[1] - min_median(local_overhead)[1]
    overhead_rows = [{"runner": name, "s min": min(values), "s median": statistics.median(values)}
                     for name, values in (("local pipeline", local_overhead), ("Ray cluster, 1 node", ray_overhead))]
    return Result(NAME, [
        Table(f"{count} copies of the a2 reference, EPOCHS = 1 (overridden), {cfg.device}", rows),
        Table(f"wall minus grading time of one cheap submission ({CHEAP.name}), {repeats} times", overhead_rows),
        Table("starting the cluster", [{"step": step, "s": seconds} for step, seconds in startup.items()]),
    ], [
        f"Ray's overhead per submission: {overhead:.2f} s (median, cluster minus local); target < "
        f"{TARGET_OVERHEAD_SECONDS:g} s: {'met' if overhead < TARGET_OVERHEAD_SECONDS else 'missed'}",
        f"2 nodes vs --workers 2: {two_nodes:.1f} s vs {local_wall:.1f} s; target no slower: "
        f"{'met' if two_nodes <= local_wall else 'missed'}",
    ])


def _on_cluster(cfg: Config, assignment: Assignment, folder: Path, out: Path, count: int,
                repeats: int) -> tuple[list[dict], dict[str, float], list[float]]:
    """The batch on 1 node and on 2, Ray's overhead on 1, and what starting the nodes took."""
    spec = {"cpus": assignment.limits.threads, "env": {DATA_DIR_ENV: str(cfg.data_root)}}
    startup, rows = {}, []
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
            rows.append(_cluster_batch(dispatcher, "Ray, 1 node", assignment, folder, out / "one", count))
            start = time.perf_counter()
            cluster.add_node(NodeSpec("node_b", **spec))
            startup["ray start (second node)"] = time.perf_counter() - start
            rows.append(_cluster_batch(dispatcher, "Ray, 2 nodes", assignment, folder, out / "two", count))
    return rows, startup, overhead


def _cluster_batch(dispatcher: Dispatcher, name: str, assignment: Assignment, folder: Path, out: Path,
                   count: int) -> dict:
    start = time.perf_counter()
    reports = run_batch(assignment, discover(folder), out, BatchOptions(workers=count), grade_one=dispatcher.grade)
    return _batch_row(name, reports, time.perf_counter() - start, count)


def _batch_row(name: str, reports: list[Report], wall: float, count: int) -> dict:
    if any(r.failures for r in reports):
        raise RuntimeError(f"a reference copy failed on {name}: {reports[0].failures}")
    nodes = sorted({r.environment.node.split(" ")[0] for r in reports})
    return {"runner": name, "wall s": wall, "s per submission": wall / count, "nodes used": ", ".join(nodes)}


def _overhead(grade_cheap, out: Path, i: int) -> float:
    """Wall time of one grade of the cheap submission minus the pipeline's own seconds."""
    folder = out / f"s{i}"
    start = time.perf_counter()
    report = grade_cheap(f"s{i}", folder)
    wall = time.perf_counter() - start
    shutil.rmtree(folder)
    return wall - report.seconds
