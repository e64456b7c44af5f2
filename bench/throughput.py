"""Batch throughput: N copies of the a2 reference (EPOCHS overridden to stay affordable) with 1 and 2 workers."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table, reference_copy
from grader.batch import BatchOptions, discover, run_batch
from grader.config import load_assignment
from grader.context import gpu_count

NAME = "batch"
WORKERS = (1, 2)


def run(cfg: Config) -> Result:
    assignment = load_assignment("a2_ffn")
    count, epochs = (4, 1) if cfg.quick else (12, 2)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp) / "submissions"
        for i in range(count):
            reference_copy(assignment, folder / f"student{i:02d}", epochs)
        for workers in WORKERS:
            options = BatchOptions(workers=workers, data_root=cfg.data_root, device_kind=cfg.device,
                                   gpu_count=gpu_count() if cfg.device == "cuda" else 0)
            start = time.perf_counter()
            reports = run_batch(assignment, discover(folder), Path(tmp) / f"out-{workers}", options)
            wall = time.perf_counter() - start
            if any(r.failures for r in reports):
                raise RuntimeError(f"a reference copy failed with {workers} workers")
            epoch = statistics.median(e.seconds for r in reports if r.training for e in r.training.epochs)
            rows.append({"workers": workers, "threads each": assignment.limits.threads, "wall s": wall,
                         "s per submission": wall / count, "median epoch s": epoch,
                         "speed-up": rows[0]["wall s"] / wall if rows else 1.0})
    return Result(NAME, [Table(f"{count} copies of the a2 reference, EPOCHS = {epochs} (overridden), "
                               f"{cfg.device}", rows)],
                  [f"each copy trains {epochs} epoch(s) instead of the reference's own EPOCHS, to stay affordable"])
