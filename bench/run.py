"""The benchmarks: a rich table per benchmark on stdout, every result and the machine in a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table as RichTable

from bench import (
    book_ffn,
    budget,
    cluster,
    data_cache,
    fixed_cost,
    gpu,
    harness,
    rush,
    rush_sim,
    service,
    similarity,
    throughput,
)
from bench.common import Config, Result, grading_threads
from grader.data import resolve_data_root

BENCHMARKS = {module.NAME: module for module in (data_cache, harness, fixed_cost, throughput, gpu, cluster, service,
                                                   rush, rush_sim, book_ffn, budget, similarity)}
console = Console()


def machine(cfg: Config) -> dict:
    """What the numbers were measured on; the load average says how busy the machine was."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    return {
        "cpu_count": os.cpu_count(), "cpu_model": model, "threads": cfg.threads,
        "torch_version": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "load_average": list(os.getloadavg()),
        "data_root": str(cfg.data_root), "quick": cfg.quick,
    }


def show(result: Result) -> None:
    for table in result.tables:
        out = RichTable(*table.rows[0], title=f"{result.name}: {table.title}")
        for row in table.rows:
            out.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
        console.print(out)
    for note in result.notes:
        console.print(f"[dim]{result.name}:[/] {note}", highlight=False)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer epochs, repetitions and submissions")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--baseline", metavar="REV",
                        help="also grade the batch benchmark with this git revision of the grader (own virtualenv)")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="JSON file for the results")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick, data_root=resolve_data_root(), threads=grading_threads(), baseline=args.baseline)
    torch.set_num_threads(cfg.threads)
    results = {"machine": machine(cfg), "benchmarks": {}}
    for name in args.only or list(BENCHMARKS):
        console.rule(name)
        result = BENCHMARKS[name].run(cfg)
        show(result)
        results["benchmarks"][name] = result.as_json()
    results["machine"]["load_average_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results written to {args.out}")
    return results
