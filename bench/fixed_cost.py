"""Fixed cost per submission: a whole grade of each reference, minus the epochs and the hidden checks' own work.

Stage times come from the pipeline's status callback; the training stage loses its epochs' own seconds
(EpochRecord.seconds) and the checks stage its checks' own seconds (CheckResult.seconds).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Config, Result, Table, declared_data, reference_copy
from grader import sandbox
from grader.batch import BatchOptions, GradeFunction, discover, run_batch
from grader.config import Assignment, assignment_ids, load_assignment
from grader.context import Device, load_grading_data
from grader.docker_runner import close_waiting_containers, grade_in_container, image
from grader.models import Report
from grader.pipeline import GradeOptions, grade
from grader.sandbox import HARNESS_PRELOAD, Sandbox, SandboxConfig, Stage, StageLimits

NAME = "fixed"
TARGETS = {"local": 3.0, "docker": 6.0, "worst case": 120.0}  # seconds for a2_ffn, the hidden checks' own work excluded
STAGES = ["intake", "import", "checks", "training", "evaluation", "writing reports"]


class StatusClock:
    """Timestamps of the pipeline's status messages; epoch messages count towards `training`."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float]] = []

    def __call__(self, message: str) -> None:
        stage = "training" if message.startswith("training") else message
        if not self.marks or self.marks[-1][0] != stage:
            self.marks.append((stage, time.perf_counter()))

    def durations(self, start: float, end: float) -> dict[str, float]:
        """Seconds from each stage's message to the next; the first stage starts at `start`."""
        starts = [start] + [t for _, t in self.marks[1:]]
        ends = [*starts[1:], end]
        return {stage: stop - begin for (stage, _), begin, stop in zip(self.marks, starts, ends, strict=True)}


def own_work(report: Report) -> tuple[float, float]:
    """The epochs' and the hidden checks' own seconds."""
    epochs = sum(e.seconds for e in report.training.epochs) if report.training else 0.0
    return epochs, sum(c.seconds for c in report.checks)


def local_breakdown(assignment_id: str, cfg: Config, work: Path) -> dict[str, float]:
    """Seconds per stage of one local grade, with the epochs and the checks' own work split off."""
    assignment = load_assignment(assignment_id)
    epochs = 1 if assignment.training else None
    submission = reference_copy(assignment, work / f"{assignment_id}-submission", epochs)
    clock = StatusClock()
    device = Device("cuda", 0) if cfg.device == "cuda" else Device()
    options = GradeOptions(data_root=cfg.data_root, device=device, status=clock)
    start = time.perf_counter()
    report = grade(assignment, submission, work / f"{assignment_id}-out", options)
    end = time.perf_counter()
    if report.failures:
        raise RuntimeError(f"{assignment_id} reference failed: {report.failures[0].message}")
    stages = clock.durations(start, end)
    epoch_seconds, check_seconds = own_work(report)
    row = {stage: stages.get(stage, 0.0) for stage in STAGES}
    row["checks"] -= check_seconds
    row["training"] -= epoch_seconds
    row["fixed total"] = end - start - epoch_seconds - check_seconds
    row["(checks' own work)"] = check_seconds
    row["(epochs' own work)"] = epoch_seconds
    return row


def docker_problem() -> str | None:
    """Why the docker runner cannot be measured here, or None when it can."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "`docker info` fails (no daemon reachable)"
    if subprocess.run(["docker", "image", "inspect", image()], capture_output=True).returncode != 0:
        return f"the image {image()} does not exist (build it first)"
    return None


def docker_fixed(cfg: Config, work: Path) -> dict[str, float]:
    """Wall time of grading the a2 reference in a container, minus the epochs and the checks' own work."""
    assignment = load_assignment("a2_ffn")
    submission = reference_copy(assignment, work / "docker-submission", 1)
    options = GradeOptions(data_root=cfg.data_root, student_id="bench")
    start = time.perf_counter()
    report = grade_in_container(assignment, submission, work / "docker-out", options)
    wall = time.perf_counter() - start
    epoch_seconds, check_seconds = own_work(report)
    return {"container wall": wall, "container start/stop (wall minus pipeline)": wall - report.seconds,
            "fixed total": wall - epoch_seconds - check_seconds}


def worst_case(cfg: Config, work: Path) -> dict[str, object]:
    """Seconds one worker spends on a submission whose train_one_epoch never returns, with the real limits."""
    assignment = load_assignment("a2_ffn")
    submission = reference_copy(assignment, work / "endless", None)
    module = submission / "ffn.py"
    module.write_text(module.read_text() + "\n\ndef train_one_epoch(model, loader, loss_fn, optimizer, device):"
                      "\n    while True:\n        pass\n")
    start = time.perf_counter()
    report = grade(assignment, submission, work / "endless-out", GradeOptions(data_root=cfg.data_root))
    return {"submission": "train_one_epoch never returns", "s": time.perf_counter() - start,
            "failure": report.failures[0].message if report.failures else "none"}


def sandbox_costs(assignment: Assignment) -> list[dict[str, object]]:
    """What the warm sandbox costs: starting it (imports paid once per submission), then a stage (a fork)."""
    limits = StageLimits(wall_seconds=60, memory_mb=assignment.limits.memory_mb, processes=64, file_size_mb=16,
                         output_kb=64, threads=assignment.limits.threads)
    start = time.perf_counter()
    with Sandbox(SandboxConfig(threads=assignment.limits.threads, preload=HARNESS_PRELOAD)) as box:
        box.run(Stage(["-c", "pass"], box.stage_dir("first"), limits))
        ready = time.perf_counter() - start
        stages = [box.run(Stage(["-c", "pass"], box.stage_dir(f"stage-{i}"), limits)).seconds for i in range(5)]
    mode = sandbox.sandbox_name()
    return [{f"warm sandbox ({mode})": "start, importing torch, torchvision and pytest (once per grader process: "
             "a batch and a Ray worker reuse it)", "s": ready},
            {f"warm sandbox ({mode})": "one stage: a fork of it (median of 5)", "s": statistics.median(stages)}]


def batch_fixed(cfg: Config, work: Path, count: int, grade_one: GradeFunction = grade) -> dict[str, float]:
    """Seconds per submission beyond the epochs' and checks' own work, in a one-worker batch of a2 copies."""
    assignment = load_assignment("a2_ffn")
    folder = work / f"batch-submissions-{grade_one.__name__}"
    for i in range(count):
        reference_copy(assignment, folder / f"student{i:02d}", 1)
    options = BatchOptions(workers=1, data_root=cfg.data_root, device_kind=cfg.device,
                           gpu_count=1 if cfg.device == "cuda" else 0)
    start = time.perf_counter()
    reports = run_batch(assignment, discover(folder), work / f"batch-out-{grade_one.__name__}", options,
                        grade_one=grade_one)
    wall = time.perf_counter() - start
    if any(r.failures for r in reports):
        raise RuntimeError("a reference copy failed in the batch")
    own = sum(sum(own_work(report)) for report in reports)
    return {"submissions": count, "wall s": wall, "fixed s per submission": (wall - own) / count}


def cli_startup() -> float:
    """Seconds to start the interpreter and import the grader's command line, paid once per `grader` command."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import grader.cli"], check=True)
    return time.perf_counter() - start


def run(cfg: Config) -> Result:
    load_grading_data.cache_clear()
    start = time.perf_counter()
    load_grading_data(cfg.data_root, declared_data(load_assignment("a2_ffn")))
    data_seconds = time.perf_counter() - start
    # One CNN epoch costs minutes on a CPU, so --quick keeps the assignments without one.
    ids = [a for a in assignment_ids() if not cfg.quick or a in ("a1_dataset", "a2_ffn")]
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as tmp:
        startups = sandbox_costs(load_assignment("a2_ffn"))
        columns = {assignment_id: local_breakdown(assignment_id, cfg, Path(tmp)) for assignment_id in ids}
        batch = batch_fixed(cfg, Path(tmp), 3 if cfg.quick else 8)
        endless = worst_case(cfg, Path(tmp))
        problem = docker_problem() if cfg.device == "cpu" else "measured on the CPU run only"
        docker = None if problem else docker_fixed(cfg, Path(tmp))
        docker_batch = None if problem else batch_fixed(cfg, Path(tmp), 3 if cfg.quick else 8, grade_in_container)
        close_waiting_containers()
    stages = list(next(iter(columns.values())))
    rows = [{"stage": stage, **{a: columns[a].get(stage, 0.0) for a in ids}} for stage in stages]
    once = [{"paid once per grader process": "load the grading data (warm tensor cache)", "s": data_seconds},
            {"paid once per grader process": "start python and import grader.cli", "s": cli_startup()}]
    local = batch["fixed s per submission"]
    notes = [f"local target for a2_ffn < {TARGETS['local']:g} s per submission in a batch: "
             f"{'met' if local < TARGETS['local'] else 'NOT met'} ({local:.2f} s)",
             f"a single `grader grade` also pays the sandbox start: {columns['a2_ffn']['fixed total']:.2f} s in all",
             "references graded with EPOCHS = 1; checks and training rows exclude the checks' and epochs' own work",
             "the grading data was loaded before grading, as in a batch; its cost is in the second table"]
    tables = [Table(f"local runner, one submission alone, seconds per stage ({cfg.threads} threads, {cfg.device})",
                    rows),
              Table("local runner, a one-worker batch of a2 reference copies (EPOCHS = 1)", [batch]),
              Table("start-up costs outside the pipeline", once),
              Table("the warm sandbox every stage of a submission forks from", startups),
              Table(f"worst case (target <= {TARGETS['worst case']:g} s of a worker)", [endless])]
    if docker is None:
        notes.append(f"docker runner skipped: {problem}; `scripts/docker-engine.sh start` prints a DOCKER_HOST")
    else:
        tables.append(Table(f"docker runner ({image()}), a2_ffn, one submission alone",
                            [{"measure": k, "s": v} for k, v in docker.items()]))
        tables.append(Table("docker runner, a one-worker batch of a2 reference copies (EPOCHS = 1): each container "
                            "starts while the one before grades", [docker_batch]))
        in_batch = docker_batch["fixed s per submission"]
        notes.append(f"docker target for a2_ffn < {TARGETS['docker']:g} s per submission in a batch: "
                     f"{'met' if in_batch < TARGETS['docker'] else 'NOT met'} ({in_batch:.2f} s)")
    return Result(NAME, tables, notes)
