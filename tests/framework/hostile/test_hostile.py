"""Hostile and broken submissions, graded by the whole engine in one batch per assignment, on synthetic data.

Every case must end with a report whose failure kind, sentence and credit are exactly what the
rubric gives, while the grader survives, leaves no process behind, changes nothing outside its
work and out dirs, and never lets a submission see the validation labels. The a2 limits are
shrunk (see A2_LIMITS) so that every limit is hit within seconds.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_world import (
    SOLO,
    SUBMISSIONS,
    Listener,
    PeakMemory,
    build_class,
    changed,
    live_children,
    reference_with,
    survivors,
    tree_hashes,
    write_tar_link,
    write_zip,
    write_zip_bomb,
)

from grader import sandbox
from grader.batch import BatchOptions, discover, run_batch
from grader.config import Assignment, assignment_ids, load_assignment
from grader.context import TRAIN_IMAGES, TRAIN_LABELS, GradingData, load_grading_data
from grader.data import cache_dir
from grader.harness.loaders import normalize
from grader.models import SIMILARITY_DIR, Failure, Report
from grader.paths import PACKAGE_DIR, assignments_dir, checks_root, solutions_dir
from grader.pipeline import GradeOptions, grade
from grader.reports import read_report_json
from grader.scoring import metric_credit
from tests.framework.declared import CIFAR2

pytestmark = pytest.mark.slow

A2_LIMITS = {"import_seconds": 15.0, "check_seconds": 10.0, "checks_total_seconds": 90.0, "eval_seconds": 30.0,
             "memory_mb": 1536, "processes": 64, "file_size_mb": 32}
A2_TRAINING = {"budget_seconds": {"cpu": 8.0}, "grace_seconds": 4.0}
KILL_SLACK = 1.5  # watchdog poll interval, killing and reaping the tree
A2_FULL = {"architecture": 15.0, "output": 5.0, "parameters": 5.0, "training": 15.0, "evaluate": 10.0}
TRAINING_CHECK = 2.5  # the training group's 15 points over its 6 checks
TRAINING_CHECKS = ["test_train_one_epoch_lowers_the_loss", "test_train_one_epoch_moves_batches_to_the_device",
                   "test_train_one_epoch_returns_mean_loss", "test_train_one_epoch_trains_in_training_mode",
                   "test_train_one_epoch_zeroes_gradients"]  # the checks that call train_one_epoch, in run order
REPORT_FILES = {"report.json", "report.md", "report.html", "report-ta.md", "report-ta.html", "results.json"}
SCAN_SECONDS = 1.0
DETAILS_LIMIT = 4000  # characters of output or traceback a report keeps per failure or check


@pytest.fixture(scope="module", autouse=True)
def needs_bubblewrap() -> None:
    """Isolation is what these cases test; the rlimits fallback does not promise it (its reports say so)."""
    if sandbox.sandbox_name() != "bubblewrap":
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but bubblewrap cannot sandbox here")
        pytest.skip("bubblewrap is missing or cannot create namespaces here")


def fast(assignment: Assignment) -> Assignment:
    """`assignment` with limits small enough that every limit case ends in seconds."""
    update = {"limits": assignment.limits.model_copy(update=A2_LIMITS)}
    if assignment.training is not None:
        update["training"] = assignment.training.model_copy(update=A2_TRAINING)
    return assignment.model_copy(update=update)


@dataclass
class World:
    """Everything outside the sandbox that the hostile cases aim at."""

    root: Path
    data_root: Path
    data: GradingData
    out: Path
    victim: Path
    listener: Listener
    marker: str

    def hunted_paths(self) -> list[str]:
        """Where a student could guess the hidden labels and test images are."""
        real = Path(os.environ.get("GRADER_DATA_DIR", "/work/shared/data/cifar10"))
        val = self.data.test
        return [str(p) for p in (real / "test" / "airplane", self.data_root / "test" / "airplane",
                                  self.data_root / "test", val.labels_path, val.images_path, val.labels_path.parent,
                                  cache_dir(), Path.home() / ".cache" / "grader")]

    def guarded(self) -> list[Path]:
        """Everything a submission must not change. Of tests/ only the hidden checks and these cases: nothing
        else there is ever visible in the sandbox, and people edit it while the suite runs."""
        checks = [checks_root() / assignment_id for assignment_id in assignment_ids()]
        return [PACKAGE_DIR, assignments_dir(), solutions_dir(), *checks, Path(__file__).parent, self.data_root,
                self.data.test.labels_path.parent, self.victim.parent]


@pytest.fixture(scope="module")
def world(synthetic_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADER_CACHE_DIR", str(root / "cache"))
        out = root / "out"
        victim = out / "zz_other_student" / "report.json"
        victim.parent.mkdir(parents=True)
        victim.write_text('{"score": 97}\n')
        listener = Listener()
        data = load_grading_data(synthetic_cifar, CIFAR2)
        data.held_out(load_assignment("a2_ffn").training.validation)  # in the cache before anything is watched
        yield World(root, synthetic_cifar, data, out, victim, listener, f"hostile-lingering-{uuid.uuid4().hex}")
        listener.close()


def a2_extras(world: World) -> dict[str, dict[str, str]]:
    """The generated files of the a2 cases: what they aim at, and the lookup table of answers."""
    val = world.data.test
    table = {_pixel_key(image): int(label) for image, label in zip(val.images, val.labels, strict=True)}
    answers = f"MEAN = {world.data.mean!r}\nSTD = {world.data.std!r}\nTABLE = {table!r}\n"
    guesses = {"paths": world.hunted_paths(), "servers": [*world.listener.addresses(), ["pypi.org", 443]],
               "scan_seconds": SCAN_SECONDS}
    return {
        "label_hunter": {"guesses.json": json.dumps(guesses)},
        "writer": {"targets.json": json.dumps(_writer_targets(world))},
        "lingering_child": {"marker.txt": world.marker},
        "lookup_table": {"answers.py": answers},
        "lookup_without_flip": {"answers.py": answers},
        "pretrained_start": {"weights.py": _offline_weights(world)},
    }


def _offline_weights(world: World) -> str:
    """A linear model trained outside the grader on the public test images and their flips, as weights.py."""
    images = normalize(np.asarray(world.data.test.images), world.data.mean, world.data.std)
    images, labels = torch.cat([images, images.flip(-1)]), torch.as_tensor(world.data.test.labels).repeat(2)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    return f"WEIGHT = {model[1].weight.tolist()!r}\nBIAS = {model[1].bias.tolist()!r}\n"


def _pixel_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes(), usedforsecurity=False).hexdigest()


def _writer_targets(world: World) -> dict[str, list[str]]:
    """Paths the import stage sees (so a failed write means something): the grader, the assignment, the mount
    points of the training tensors (the world's own cache, so even a sandbox bug destroys nothing that cannot be
    rebuilt; the import stage sees them empty), the Python installation and system folders. The hidden checks
    are not among them: only the checks stage sees them."""
    site = Path(torch.__file__).parent
    folders = [PACKAGE_DIR, PACKAGE_DIR / "harness", assignments_dir() / "a2_ffn",
               TRAIN_IMAGES.parent, site, Path("/usr/lib"), Path("/"), Path("/stages")]
    rewrite = [PACKAGE_DIR / "pipeline.py", PACKAGE_DIR / "harness" / "evaluation.py",
               PACKAGE_DIR / "classifier_checks.py", PACKAGE_DIR / "harness" / "canary_check.py",
               assignments_dir() / "a2_ffn" / "assignment.toml", TRAIN_IMAGES,
               site / "__init__.py", Path("/usr/bin/env")]
    return {"create_in": [str(p) for p in folders], "rewrite": [str(p) for p in rewrite],
            "destroy": [str(TRAIN_LABELS), str(TRAIN_IMAGES)]}


def a2_archives(folder: Path, assignment: Assignment, tag: str) -> None:
    """The a2 cases that only exist as odd archives, generated here rather than committed."""
    source = reference_with(assignment, "")
    write_zip(folder / "empty.zip", {})
    write_zip(folder / "zip_slip_parent.zip", {"ffn.py": source, f"../../hostile-escaped-{tag}.py": b"x = 1\n"})
    write_zip(folder / "zip_slip_absolute.zip", {"ffn.py": source, f"/tmp/hostile-absolute-{tag}.py": b"x = 1\n"})
    write_zip(folder / "zip_symlink.zip", {}, symlinks={"ffn.py": str(PACKAGE_DIR / "pipeline.py")})
    write_tar_link(folder / "tar_link.tar.gz", "ffn.py", "/etc/passwd")
    write_zip_bomb(folder / "zip_bomb.zip", "ffn.py", megabytes=256)


@dataclass
class Graded:
    """A finished batch: its reports by student, and what it did to the machine."""

    assignment: Assignment
    out: Path
    reports: dict[str, Report]
    seconds: float
    changed: list[str]
    children: list[str]

    def report(self, student: str) -> Report:
        """The student's report, after checking every report file exists and report.json matches it."""
        folder = self.out / student
        assert {p.name for p in folder.iterdir()} >= REPORT_FILES, sorted(folder.iterdir())
        report = self.reports[student]
        assert read_report_json(folder / "report.json") == report
        assert report.score.total == round(sum(item.points for item in report.score.items), 2)
        details = [f.details for f in report.failures] + [c.details for c in report.checks]
        assert all(len(text) <= DETAILS_LIMIT for text in details), "student output reaches a report only trimmed"
        return report

    def text(self, student: str, name: str) -> str:
        return (self.out / student / name).read_text()


def run_class(assignment: Assignment, folder: Path, world: World) -> Graded:
    """Batch-grade `folder` into the world's out dir, hashing what must not change before and after."""
    out = world.out / assignment.id
    before = tree_hashes(*world.guarded(), folder)
    started = time.monotonic()
    reports = run_batch(assignment, discover(folder), out,
                        BatchOptions(workers=2, data_root=world.data_root))
    seconds = time.monotonic() - started
    after = tree_hashes(*world.guarded(), folder)
    by_student = {r.submission.student_id: r for r in reports}
    return Graded(assignment, out, by_student, seconds, changed(before, after), live_children())


@pytest.fixture(scope="module")
def hunter_control(world: World) -> dict[str, list[str]]:
    """The label hunter run in this process, outside the sandbox: proof that its probes find what is there."""
    spec = importlib.util.spec_from_file_location("snoop", SUBMISSIONS / "a2_ffn" / "label_hunter" / "snoop.py")
    snoop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(snoop)
    return {"guessed": snoop.guessed(world.hunted_paths()),
            "scanned": snoop.scan(SCAN_SECONDS, roots=[str(world.data.test.labels_path.parent), str(world.data_root)]),
            "reached": snoop.phone_home([["127.0.0.1", world.listener.port]], [])}


@pytest.fixture(scope="module")
def a2(world: World, hunter_control: dict[str, list[str]]) -> Graded:
    assignment = fast(load_assignment("a2_ffn"))
    folder = build_class(assignment, world.root / "class_a2", a2_extras(world))
    a2_archives(folder, assignment, world.marker)
    return run_class(assignment, folder, world)


@pytest.fixture(scope="module")
def a1(world: World) -> Graded:
    assignment = load_assignment("a1_dataset")
    folder = build_class(assignment, world.root / "class_a1", {})
    write_zip(folder / "one_folder_down.zip", {"hw1/cifar_dataset.py": reference_with(assignment, "")})
    nested = folder / "non_utf8"
    nested.mkdir()
    legacy = "\n# Auteur : Jérôme Lefèvre — données CIFAR, « version finale »\n"
    (nested / "cifar_dataset.py").write_bytes(reference_with(assignment, "") + legacy.encode("cp1252"))
    return run_class(assignment, folder, world)


def check_points(report: Report) -> dict[str, float]:
    return {item.name: item.points for item in report.score.items if item.name != "accuracy"}


def metric_points(report: Report) -> float:
    return next(item.points for item in report.score.items if item.name == "accuracy")


def only_failure(report: Report, stage: str, kind: str, *words: str) -> Failure:
    """The report's one failure, of `stage` and `kind`, as one sentence holding every one of `words`."""
    assert [(f.stage, f.kind) for f in report.failures] == [(stage, kind)], report.failures
    failure = report.failures[0]
    assert "\n" not in failure.message and failure.message.endswith("."), failure.message
    for word in words:
        assert word in failure.message, failure.message
    return failure


def earned_nothing(report: Report) -> None:
    assert report.score.total == 0 and report.training is None and report.metrics is None
    assert all(item.reason.startswith("Not earned") for item in report.score.items)


def full_metric(report: Report, assignment: Assignment) -> None:
    """The metric earned exactly what the assignment's curve gives for the measured accuracy."""
    assert report.metrics is not None
    expected = round(assignment.metric.points * metric_credit(assignment.metric, report.metrics.value), 2)
    assert metric_points(report) == expected


# ---- the guarantees, over the whole batch --------------------------------------------------------------------


def test_every_submission_gets_a_report_and_a_gradebook_row(a2: Graded, a1: Graded) -> None:
    for graded in (a2, a1):
        folders = sorted(p.name for p in graded.out.iterdir() if p.is_dir() and p.name != SIMILARITY_DIR)
        assert folders == sorted(graded.reports)
        for student in graded.reports:
            graded.report(student)
        with (graded.out / "grades.csv").open() as file:
            assert sorted(row["student_id"] for row in csv.DictReader(file)) == sorted(graded.reports)


def test_the_grader_itself_never_failed(a2: Graded, a1: Graded) -> None:
    reports = [*a2.reports.values(), *a1.reports.values()]
    assert not [r.submission.student_id for r in reports if any("grader failed" in f.message for f in r.failures)]


def test_no_process_outlives_the_batch(a2: Graded, a1: Graded, world: World) -> None:
    assert a2.children == [] and a1.children == []
    assert survivors(world.marker) == []


def test_nothing_outside_the_work_and_out_dirs_changes(a2: Graded, a1: Graded, world: World) -> None:
    # A file edited by hand while the suite runs shows up here too: rerun before blaming the sandbox.
    assert a2.changed == [] and a1.changed == [], (a2.changed, a1.changed)
    assert world.victim.read_text() == '{"score": 97}\n'
    stray = {p.name for p in world.out.iterdir()} - {"a2_ffn", "a1_dataset", world.victim.parent.name}
    assert stray == set()
    assert not list(world.root.glob("**/hostile-writer-was-here.txt"))
    assert not list(Path("/tmp").glob(f"hostile-*-{world.marker}.py"))


# ---- careless ------------------------------------------------------------------------------------------------


def test_syntax_error_names_the_line(a2: Graded) -> None:
    report = a2.report("syntax_error")
    only_failure(report, "import", "syntax_error", "ffn.py has a syntax error on line 10")
    earned_nothing(report)
    assert report.checks == []


def test_missing_module_is_named(a2: Graded) -> None:
    report = a2.report("missing_module")
    only_failure(report, "import", "import_error", "'my_cifar_helpers'", "not available")
    earned_nothing(report)


def test_misspelled_function_suggests_the_close_name(a2: Graded) -> None:
    report = a2.report("misspelled_function")
    only_failure(report, "import", "missing_name", "does not define train_one_epoch", "'trian_one_epoch'", "typo")
    assert check_points(report) == A2_FULL | {"training": TRAINING_CHECK}, "only make_optimizer's check passes"
    assert report.training is None and metric_points(report) == 0


def test_wrong_signature_shows_the_expected_call(a2: Graded) -> None:
    report = a2.report("wrong_signature")
    only_failure(report, "import", "wrong_signature",
                 "train_one_epoch must be callable as train_one_epoch(model, loader, loss_fn, optimizer, device)")
    assert check_points(report) == A2_FULL | {"training": TRAINING_CHECK}
    assert report.training is None and metric_points(report) == 0


def test_logits_of_the_wrong_shape(a2: Graded) -> None:
    report = a2.report("wrong_output_shape")
    # The stage sees the 64 hidden images and their flipped copies together: 128 images.
    only_failure(report, "evaluation", "wrong_output", "For 128 images", "shape (128, 10)", "expected (128, 2)")
    assert check_points(report) == A2_FULL | {"output": 0.0}
    assert report.training.stopped == "completed" and report.metrics is None and metric_points(report) == 0


def test_train_one_epoch_returning_the_wrong_type(a2: Graded) -> None:
    report = a2.report("wrong_return_type")
    only_failure(report, "training", "wrong_output", "train_one_epoch returned dict")
    assert check_points(report) == A2_FULL | {"training": 15 - TRAINING_CHECK}
    assert report.training.stopped == "failed" and report.metrics is None and metric_points(report) == 0


def test_nan_logits(a2: Graded) -> None:
    report = a2.report("nan_logits")
    only_failure(report, "evaluation", "wrong_output", "not finite numbers")
    assert check_points(report) == A2_FULL | {"output": 0.0}
    assert metric_points(report) == 0


def test_nan_loss_keeps_the_check_groups_and_loses_the_metric(a2: Graded) -> None:
    report = a2.report("nan_loss")
    only_failure(report, "training", "nan_loss", "became nan in epoch 4")
    assert check_points(report) == A2_FULL
    assert [e.epoch for e in report.training.epochs] == [1, 2, 3] and report.training.stopped == "failed"
    assert report.metrics is None and metric_points(report) == 0 and report.score.total == 50


def test_megabytes_of_output_and_a_fake_score_change_nothing(a2: Graded) -> None:
    report = a2.report("loud")
    assert report.failures == [] and check_points(report) == A2_FULL
    full_metric(report, a2.assignment)
    assert (a2.out / "loud" / "report.json").stat().st_size < 64_000
    assert "score: 100" not in a2.text("loud", "report.md")


def test_too_many_parameters_is_refused_before_training(a2: Graded) -> None:
    report = a2.report("too_many_parameters")
    only_failure(report, "training", "too_many_parameters", "36,", "more than the limit of 5,000,000",
                 "Training refused")
    assert check_points(report) == A2_FULL | {"parameters": 0.0}
    assert report.training.stopped == "failed" and report.training.epochs == []
    assert report.training.parameters == 36_900_002
    assert metric_points(report) == 0


def test_a_cnn_in_the_ffn_assignment(a2: Graded) -> None:
    report = a2.report("cnn_in_ffn")
    only_failure(report, "training", "forbidden_layer", "Training refused", "weights in Conv2d",
                 "computes convolution, max_pool2d")
    assert check_points(report) == A2_FULL | {"architecture": 0.0}
    assert report.training.epochs == [] and metric_points(report) == 0


def test_a_convolution_smuggled_through_a_bare_parameter(a2: Graded) -> None:
    report = a2.report("conv_smuggled")
    only_failure(report, "training", "forbidden_layer", "weights in SneakyFFN", "computes convolution")
    assert check_points(report) == A2_FULL | {"architecture": 0.0}
    architecture = next(c for c in report.checks if c.nodeid.endswith("test_only_allowed_layers"))
    assert "SneakyFFN" in architecture.message and "convolution" in architecture.message
    assert report.training.epochs == [] and metric_points(report) == 0


# ---- heavy ---------------------------------------------------------------------------------------------------


def test_infinite_loop_at_import_times_out(a2: Graded) -> None:
    report = a2.report("import_loop")
    limit = a2.assignment.limits.import_seconds
    only_failure(report, "import", "timeout", f"took longer than {limit:g} s while importing ffn.py")
    earned_nothing(report)
    assert limit <= report.seconds <= limit + 30, "the stage's own timing is test_sandbox's; this only rules out a hang"


def test_train_one_epoch_that_never_returns_costs_one_check_limit(a2: Graded) -> None:
    report = a2.report("train_loop")
    limit = a2.assignment.limits.check_seconds
    only_failure(report, "checks", "timeout", f"train_one_epoch did not return within {limit:g} s in the hidden "
                 "checks, so the grader did not train the model")
    calling = {c.nodeid.split("::")[1]: c for c in report.checks if c.nodeid.split("::")[1] in TRAINING_CHECKS}
    first, *rest = TRAINING_CHECKS
    assert calling[first].outcome == "timeout" and calling[first].message == (
        f"train_one_epoch did not return within {limit:g} s.")
    assert limit - 0.5 <= calling[first].seconds <= limit + KILL_SLACK
    for name in rest:
        assert calling[name].outcome == "failed" and calling[name].message.startswith(
            f"Not run: train_one_epoch did not return within {limit:g} s in {first}"), calling[name].message
        assert calling[name].seconds < 1
    assert check_points(report) == A2_FULL | {"training": TRAINING_CHECK} and metric_points(report) == 0
    assert report.training is None and report.seconds < 2 * limit + 15, "the worst case costs one check limit"


def test_sleep_past_the_budget_meets_the_wall_clock_limit_and_keeps_the_last_epoch(a2: Graded) -> None:
    report = a2.report("sleep_past_budget")
    training = a2.assignment.training
    limit = training.wall_limit("cpu")
    only_failure(report, "training", "timeout", f"took longer than {limit:g} s while training the model",
                 "the model saved after epoch 3 was evaluated")
    assert report.training.stopped == "killed" and len(report.training.epochs) == 3
    assert limit <= report.training.seconds <= limit + KILL_SLACK
    assert report.training.budget_used < training.budget_seconds["cpu"], "sleeping uses no CPU budget"
    assert check_points(report) == A2_FULL
    full_metric(report, a2.assignment)


def test_burning_cpu_past_the_budget_is_stopped_by_cpu_time(world: World, tmp_path: Path) -> None:
    # Graded alone, not in the class's batch: the CPU kill must come before the wall-clock safety net, which a
    # busy machine could otherwise reach first (that race is the safety net's purpose, not this test's).
    assignment = fast(load_assignment("a2_ffn"))
    training = assignment.training.model_copy(update={"wall_safety_factor": 20.0})
    assignment = assignment.model_copy(update={"training": training})
    submission = tmp_path / "ffn.py"
    submission.write_bytes(reference_with(assignment, (SOLO / "burns_past_budget.patch.py").read_text()))
    report = grade(assignment, submission, tmp_path / "out", GradeOptions(data_root=world.data_root))
    limit = training.stage_seconds("cpu")  # the budget, its grace and the validation passes' share
    only_failure(report, "training", "timeout", f"used more than {limit:g} s of CPU time per thread",
                 "the model saved after epoch 2 was evaluated")
    assert report.training.stopped == "killed" and len(report.training.epochs) == 2
    assert limit <= report.training.budget_used <= limit + KILL_SLACK
    assert report.training.budget_clock == "cpu" and report.training.seconds < training.wall_limit("cpu")
    assert check_points(report) == A2_FULL
    full_metric(report, assignment)


def test_unbounded_memory_is_stopped(a2: Graded) -> None:
    report = a2.report("memory_hog")
    limit = a2.assignment.limits.memory_mb
    only_failure(report, "import", "out_of_memory", f"used more than {limit} MB of memory while importing ffn.py")
    earned_nothing(report)


def test_memory_limit_costs_at_most_the_limit(world: World, tmp_path: Path) -> None:
    assignment = fast(load_assignment("a2_ffn"))
    limit = 1024
    assignment = assignment.model_copy(update={"limits": assignment.limits.model_copy(update={"memory_mb": limit})})
    submission = tmp_path / "ffn.py"
    submission.write_text(reference_with(assignment, (SUBMISSIONS / "a2_ffn" / "memory_hog.patch.py").read_text())
                          .decode())
    with PeakMemory() as memory:
        report = grade(assignment, submission, tmp_path / "out", GradeOptions(data_root=world.data_root))
    only_failure(report, "import", "out_of_memory", f"more than {limit} MB")
    # The stage's own limit, plus the warm sandbox it forked from (torch imported once) and the grader's slack.
    assert limit * 0.8 <= memory.peak_mb <= limit + 768, memory.peak_mb
    assert report.seconds < 15


def test_fork_bomb_is_stopped_at_once(a2: Graded) -> None:
    report = a2.report("fork_bomb")
    only_failure(report, "import", "crash", "started too many processes while importing ffn.py")  # not the clock
    earned_nothing(report)


def test_endless_threads_do_not_hold_up_any_stage(a2: Graded) -> None:
    report = a2.report("endless_threads")
    assert report.failures == [] and check_points(report) == A2_FULL
    full_metric(report, a2.assignment)
    assert report.seconds < 60


def test_a_multi_gigabyte_file_hits_the_file_size_limit(a2: Graded) -> None:
    report = a2.report("big_file")
    limit = a2.assignment.limits.file_size_mb
    only_failure(report, "training", "file_too_large", f"larger than the {limit} MB limit")
    failed = [c.message for c in report.checks if c.outcome != "passed"]
    assert failed == ["OSError: [Errno 27] File too large"] * 5, "every check that calls train_one_epoch"
    assert check_points(report) == A2_FULL | {"training": TRAINING_CHECK} and metric_points(report) == 0


def test_a_detached_child_is_reaped(a2: Graded, world: World) -> None:
    report = a2.report("lingering_child")
    assert report.failures == [] and check_points(report) == A2_FULL
    assert survivors(world.marker) == []


# ---- hostile -------------------------------------------------------------------------------------------------


def test_the_hidden_labels_cannot_be_found_or_sent(a2: Graded, world: World, hunter_control: dict) -> None:
    # Outside the sandbox the same probes find the labels and reach the listener, so finding nothing inside means
    # something: any find or connection inside would have raised "LEAK" and failed a stage.
    assert str(world.data.test.labels_path) in hunter_control["guessed"]
    assert any("test-" in path and "labels" in path for path in hunter_control["scanned"])
    assert hunter_control["reached"] == [f"127.0.0.1:{world.listener.port}"]
    report = a2.report("label_hunter")
    assert report.failures == [] and check_points(report) == A2_FULL
    full_metric(report, a2.assignment)
    assert world.listener.accepted == 1, "only the control run outside the sandbox connected"


def test_writes_outside_the_sandbox_all_fail(a2: Graded) -> None:
    report = a2.report("writer")
    assert report.failures == [] and check_points(report) == A2_FULL
    written = {p.name for p in (a2.out / "writer").iterdir()}
    assert written == {p.name for p in (a2.out / "loud").iterdir()}, "only the grader's files, as for any student"


def test_sys_exit_at_import(a2: Graded) -> None:
    report = a2.report("exit_at_import")
    only_failure(report, "import", "early_exit", "ffn.py called exit() while being imported")
    earned_nothing(report)


def test_os_exit_at_import(a2: Graded) -> None:
    report = a2.report("os_exit_at_import")
    only_failure(report, "import", "early_exit", "ended the process early (exit code 0) while importing ffn.py")
    earned_nothing(report)


def test_exiting_inside_a_check_costs_only_that_check(a2: Graded) -> None:
    report = a2.report("exit_in_check")
    assert report.failures == []
    evaluate = sorted(c.outcome for c in report.checks if c.group == "evaluate")
    assert evaluate == ["crashed", "failed", "failed"]
    assert check_points(report) == A2_FULL | {"evaluate": 0.0}
    full_metric(report, a2.assignment)


def test_exiting_during_training_keeps_the_finished_epochs(a2: Graded) -> None:
    report = a2.report("exit_in_training")
    only_failure(report, "training", "early_exit", "ended the process early (exit code 0) while training the model",
                 "the model saved after epoch 3 was evaluated")
    assert report.training.stopped == "killed" and len(report.training.epochs) == 3
    assert check_points(report) == A2_FULL
    full_metric(report, a2.assignment)


def test_a_lenient_allclose_put_back_before_the_canary_still_fails_the_check(a2: Graded) -> None:
    # The verdict compares the gradients in a clean process, so what the submission did to torch does not count.
    report = a2.report("allclose_swap")
    assert report.failures == [], "the original was back before the canary looked: no tampering to see"
    zero_grad = next(c for c in report.checks if c.nodeid.endswith("test_train_one_epoch_zeroes_gradients"))
    assert zero_grad.outcome == "failed"
    assert zero_grad.message.startswith("At optimizer step 3 the gradients still included earlier batches")
    assert check_points(report) == A2_FULL | {"training": 15 - TRAINING_CHECK}
    full_metric(report, a2.assignment)


@pytest.mark.parametrize(("case", "why"), [
    ("pytest_patch", "The canary check ended as passed."),
    ("torch_patch", "The submission replaced torch.allclose."),
    ("grader_patch", "The submission replaced grader.pytest_plugin.ResultsWriter._write."),
    ("forged_results", "The canary check ended as not run."),
])
def test_tampering_with_the_test_run_is_caught(a2: Graded, case: str, why: str) -> None:
    report = a2.report(case)
    failure = only_failure(report, "checks", "tampering", "tampered")
    assert failure.details.endswith(why), failure.details
    assert report.checks and all(c.points == 0 for c in report.checks)
    assert report.score.total == 0 and report.training is None and report.metrics is None


def test_an_honest_submission_that_sets_library_options_is_not_tampering(a2: Graded) -> None:
    report = a2.report("busy_but_honest")
    assert report.failures == [] and check_points(report) == A2_FULL
    full_metric(report, a2.assignment)


def test_conftest_and_pytest_ini_in_the_submission_are_ignored(a2: Graded) -> None:
    report = a2.report("conftest_ignored")
    assert report.submission.files == ["ffn.py"]
    assert any("Ignored conftest.py" in note for note in report.submission.notes)
    assert any("Ignored pytest.ini" in note for note in report.submission.notes)
    assert report.failures == []
    assert check_points(report) == A2_FULL | {"evaluate": 0.0}


@pytest.mark.parametrize(("case", "words"), [
    ("zip_slip_parent", ["points outside the submission folder"]),
    ("zip_slip_absolute", ["points outside the submission folder"]),
    ("zip_symlink", ["symbolic link"]),
    ("tar_link", ["link or device"]),
    ("zip_bomb", ["ffn.py is larger than 5 MB"]),
    ("empty", ["contains no files"]),
])
def test_hostile_archives_are_refused_at_intake(a2: Graded, world: World, case: str, words: list[str]) -> None:
    report = a2.report(case)
    only_failure(report, "intake", "intake", *words)
    assert report.score.total == 0 and report.checks == []
    assert not list(Path("/tmp").glob(f"hostile-*-{world.marker}.py"))


def rules(report: Report) -> dict[str, str]:
    """The integrity findings of a report: rule -> action."""
    return {finding.rule: finding.action for finding in report.integrity}


def test_a_lookup_table_of_answers_earns_no_accuracy_credit(a2: Graded) -> None:
    report = a2.report("lookup_table")
    assert report.failures == [] and check_points(report) == A2_FULL
    assert report.metrics.value == 1.0 and report.metrics.perturbed_value == 0.5
    found = rules(report)  # synthetic images are so easy that every model earns the accuracy review flag
    assert found | {"accuracy": "review"} == {"perturbation_gap": "no_credit", "test_over_validation": "no_credit",
                                              "unchanged": "no_credit", "accuracy": "review"}
    assert metric_points(report) == 0
    accuracy = next(item for item in report.score.items if item.name == "accuracy")
    assert "copies of them with a hflip that the grader made" in accuracy.reason, accuracy.reason
    assert "No accuracy credit" in a2.text("lookup_table", "report-ta.md")
    with (a2.out / "grades.csv").open() as file:
        rows = {row["student_id"]: row for row in csv.DictReader(file)}
    assert rows["lookup_table"]["flagged_for_review"] == "true"
    assert "perturbation_gap:no_credit" in rows["lookup_table"]["integrity"]
    assert "no_credit" not in rows["loud"]["integrity"]


def test_a_lookup_table_cannot_switch_off_the_perturbation(a2: Graded) -> None:
    # The grader makes the flipped copy and mixes it in: the stage has no perturbation to replace.
    report = a2.report("lookup_without_flip")
    assert report.failures == [] and report.metrics.value == 1.0
    assert report.metrics.perturbed_value == 0.5 and rules(report)["perturbation_gap"] == "no_credit"
    assert metric_points(report) == 0


def test_weights_trained_elsewhere_earn_no_accuracy_credit(a2: Graded) -> None:
    """Trained offline on the public test images and their flips, frozen by lr=0: the flip check cannot see it, the
    grader's own measure of the model as built can."""
    report = a2.report("pretrained_start")
    assert report.failures == [] and report.metrics.value == 1.0 and report.metrics.perturbed_value == 1.0
    assert report.training.untrained_metric == 1.0 and not report.training.model_changed
    assert {"untrained_over_chance": "no_credit", "unchanged": "no_credit"}.items() <= rules(report).items()
    assert metric_points(report) == 0 and check_points(report) == A2_FULL
    accuracy = next(item for item in report.score.items if item.name == "accuracy")
    assert accuracy.reason.startswith("Not earned: The model as build_model() returns it, before any training")


def test_a_model_that_trains_while_it_is_validated_is_stopped(a2: Graded) -> None:
    """The validation passes are the grader's time, not the budget's: a model that trains itself in eval mode there
    gets no free training; it is stopped and earns no accuracy credit."""
    report = a2.report("trains_while_validated")
    only_failure(report, "training", "changed_while_measured",
                 "Training stopped: the model changed its own weights while the grader examined it")
    assert report.training.epochs == [] and metric_points(report) == 0
    assert check_points(report) == A2_FULL


def test_the_evaluation_cannot_train_any_further(a2: Graded) -> None:
    """A model that trains itself when the grader loads its checkpoint scores exactly as its honest control: the
    evaluation stage loads with torch's own loader, and sees no training data."""
    cheat, control = a2.report("trains_while_loading"), a2.report("weak_control")
    assert cheat.failures == [] and control.failures == []
    assert [e.epoch for e in cheat.training.epochs] == [1]
    assert cheat.metrics == control.metrics and metric_points(cheat) == metric_points(control)
    assert control.metrics.value < 1.0, "the control must leave room for the cheat to gain"


def test_forged_evaluation_results_are_scored_against_the_real_labels(a2: Graded) -> None:
    report = a2.report("eval_globals")
    assert report.failures == [] and check_points(report) == A2_FULL
    assert report.metrics.value == 0.5 and report.metrics.confusion == [[0, 32], [0, 32]]
    assert metric_points(report) == 0


def test_a_submission_that_detects_the_grader_is_graded_on_what_it_did(a2: Graded) -> None:
    report = a2.report("detects_grader")
    assert report.failures == []
    assert check_points(report) == A2_FULL | {"training": 3 * TRAINING_CHECK}, (
        "make_optimizer, the mean loss and moving batches pass; no step, no train mode")
    assert report.metrics.value == 0.5 and metric_points(report) == 0


# ---- assignment 1 --------------------------------------------------------------------------------------------


def test_a1_absolute_path_from_the_authors_laptop(a1: Graded) -> None:
    report = a1.report("laptop_path")
    only_failure(report, "import", "import_error", "FileNotFoundError",
                 "'/Users/alice/Desktop/cifar10/batches.meta.txt'")
    earned_nothing(report)


def test_a1_notebook_that_does_not_parse(a1: Graded) -> None:
    report = a1.report("broken_notebook")
    only_failure(report, "intake", "intake", "broken_notebook.ipynb is not a readable Jupyter notebook")
    assert report.score.total == 0


def test_a1_zip_with_the_files_one_folder_down_grades_normally(a1: Graded) -> None:
    report = a1.report("one_folder_down")
    assert report.failures == [] and report.score.total == report.score.max_total
    assert "Took the files from the folder hw1/ inside the submission." in report.submission.notes


def test_a1_file_in_a_legacy_encoding_grades_normally(a1: Graded) -> None:
    report = a1.report("non_utf8")
    assert report.failures == [] and report.score.total == report.score.max_total
    assert any("was not UTF-8" in note for note in report.submission.notes)


def test_a1_statistics_cannot_be_faked_with_a_lenient_allclose(a1: Graded) -> None:
    report = a1.report("allclose_swap")
    assert report.failures == []
    assert next(item for item in report.score.items if item.name == "stats").points == 0
    assert report.score.total == report.score.max_total - 15


def test_a1_statistics_cannot_be_faked_with_a_tensor_subclass(a1: Graded) -> None:
    report = a1.report("forged_tensor")
    assert report.failures == []
    stats = [check for check in report.checks if check.group == "stats"]
    assert [check.outcome for check in stats] == ["failed", "failed"]
    forged = "channel_stats returned the mean as a _Agreeable (a subclass of torch.Tensor), not a torch.Tensor."
    assert [check.message for check in stats] == [forged, forged]
    assert report.score.total == report.score.max_total - 15
