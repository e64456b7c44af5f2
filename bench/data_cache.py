"""Data: cold preparation of the CIFAR-2 tensors from the image files, and warm loads from the tensor cache."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import Config, Result, Table, declared_data, min_median
from grader.config import load_assignment
from grader.data import CACHE_DIR_ENV, _stat_key, image_files, load_split

NAME = "data"
TARGET_WARM = 0.5


CIFAR2 = declared_data(load_assignment("a2_ffn"))  # the bundled CIFAR-2 assignments' images


@contextmanager
def fresh_cache() -> Iterator[Path]:
    """A temporary GRADER_CACHE_DIR, so the user's cache is neither used nor touched."""
    saved = os.environ.get(CACHE_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        os.environ[CACHE_DIR_ENV] = tmp
        try:
            yield Path(tmp)
        finally:
            if saved is None:
                os.environ.pop(CACHE_DIR_ENV)
            else:
                os.environ[CACHE_DIR_ENV] = saved


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def warm_parts(root: Path) -> dict[str, float]:
    """One warm load, split into its parts; `warm total` is what GradingData.load costs."""
    files = []
    parts = {"list image files": timed(
        lambda: files.extend(image_files(root, s, CIFAR2.classes) for s in ("train", "test")))}
    parts["stat fingerprint key"] = timed(lambda: [_stat_key(split) for split in files])
    start = time.perf_counter()
    train = load_split(root, "train", CIFAR2)
    load_split(root, "test", CIFAR2)
    parts["load_split train + test"] = time.perf_counter() - start
    parts["channel_stats"] = timed(train.channel_stats)
    parts["warm total"] = parts["load_split train + test"] + parts["channel_stats"]
    return parts


def run(cfg: Config) -> Result:
    reps = 2 if cfg.quick else 5
    with fresh_cache():
        start = time.perf_counter()
        train = load_split(cfg.data_root, "train", CIFAR2)
        test = load_split(cfg.data_root, "test", CIFAR2)
        cold = time.perf_counter() - start
        cold_stats = timed(train.channel_stats)
        warm = [warm_parts(cfg.data_root) for _ in range(reps)]
    rows = [{"measure": "cold: decode images and write tensors (train + test)", "s min": cold, "s median": cold},
            {"measure": "cold: channel_stats", "s min": cold_stats, "s median": cold_stats}]
    for part in warm[0]:
        low, mid = min_median([w[part] for w in warm])
        rows.append({"measure": f"warm: {part}", "s min": low, "s median": mid})
    total = min_median([w["warm total"] for w in warm])[1]
    return Result(NAME, [Table(f"{len(train.labels)} train + {len(test.labels)} test images, {reps} warm loads",
                               rows)],
                  [f"target warm total < {TARGET_WARM} s (median): {'met' if total < TARGET_WARM else 'NOT met'}"
                   f" ({total:.3f} s)", "the stat key and the file listing are part of load_split, shown apart"])
